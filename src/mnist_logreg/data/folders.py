"""A folder of one's own labelled images as a dataset: what it holds, found with the standard library.

The layout is torchvision's ``ImageFolder``: ``FOLDER/<class>/<image>``, the class names being
the subfolder names, sorted; or ``FOLDER/train/<class>/...`` and ``FOLDER/test/<class>/...``
for a test split of one's own. Images may sit deeper inside a class's folder. Hidden files and
folders (a leading dot) are left out, and links to folders inside a class's folder are not
followed, so a link loop cannot trap the walk. Reading the images is ``data/folder_images.py``.

Standard library only: the command line scans a folder while it checks its arguments.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import DEFAULT_SEED
from ..errors import DataError, SettingError, UsageError
from ..images.layout import FOLDER_LAYOUTS, Layout

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
SPLIT_FOLDERS = ("train", "test")  # a folder holding both has a test split of its own
FEW_IMAGES = 5  # a class with fewer images than this gets a warning: its accuracy will say little
# Shares of the images held out where the folder has no test/ of its own, and of the training
# images kept for validation: MNIST's 10,000 of 70,000, and its 10,000 of 60,000.
TEST_SHARE = 1 / 7
VAL_SHARE = 1 / 6
TEST_SEED = DEFAULT_SEED  # one held-out test split per folder, whatever a run's --seed: runs compare


@dataclass(frozen=True)
class FolderDataset:
    """A folder's classes and image files (paths relative to ``path``), and how its images are read."""

    path: Path  # absolute
    layout_name: str  # a key of layout.FOLDER_LAYOUTS
    classes: tuple[str, ...]
    train_files: tuple[tuple[str, int], ...]  # (relative path, label), sorted by class then path
    test_files: tuple[tuple[str, int], ...]  # from test/; empty where the test split is held out
    cache: bool = True  # keep the decoded images beside the data (data/folder_images.py); False writes nothing

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def layout(self) -> Layout:
        return FOLDER_LAYOUTS[self.layout_name]

    @property
    def has_test_folder(self) -> bool:
        return bool(self.test_files)

    def default_val_size(self) -> int:
        """MNIST's share of validation images, of the images left for training."""
        training = len(self.train_files) - (0 if self.has_test_folder else held_out_size(len(self.train_files)))
        return max(1, round(training * VAL_SHARE))

    def to_json(self) -> dict:
        """What model.json records of the folder, enough to read it again (``from_json``)."""
        return {
            "folder": str(self.path),
            "layout": self.layout_name,
            "test": "test folder" if self.has_test_folder else f"held out: {TEST_SHARE:.4f}, seed {TEST_SEED}",
            "cache": self.cache,
        }

    @classmethod
    def from_json(
        cls, value: dict, classes: list[str] | None = None, moved_to: str | Path | None = None
    ) -> FolderDataset:
        """The folder a run was trained on, read again, from where it was or from ``moved_to``;
        refused if its classes are no longer the run's."""
        if moved_to is None and not Path(value["folder"]).is_dir():
            raise DataError(
                f"no folder at {value['folder']}, where this run's images were; if they moved, "
                "give their new place with --dataset FOLDER"
            )
        folder = open_folder(
            value["folder"] if moved_to is None else moved_to, value["layout"], value.get("cache", True)
        )
        if classes is not None and list(folder.classes) != list(classes):
            raise DataError(
                f"{folder.path} now holds the classes {list(folder.classes)}, not the run's {list(classes)}"
            )
        return folder


def check_can_move(source: dict | None, moved_to: str | Path | None, dataset: str) -> None:
    """Refuse a new place for the images (``--dataset FOLDER``) of a run not trained on a folder:
    ``source`` is its model.json's record of the folder, None for a dataset of the table."""
    if moved_to is not None and source is None:
        raise UsageError(f"--dataset FOLDER is for a run trained on a folder, and this one was trained on {dataset}")


def held_out_size(images: int) -> int:
    return max(1, round(images * TEST_SHARE))


def open_folder(path: str | Path, layout: str = "digits", cache: bool = True, log=lambda message: None):
    """Scan ``path`` as a dataset. Raises DataError, naming the folder, for a missing folder, fewer
    than two classes, or a class without image files; warns through ``log`` of a class with few."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"no folder at {path}")
    if layout not in FOLDER_LAYOUTS:
        raise SettingError(f"layout={layout!r} is not one of {sorted(FOLDER_LAYOUTS)}")
    split = all((root / name).is_dir() for name in SPLIT_FOLDERS)
    train_root = root / "train" if split else root
    classes = _class_folders(train_root)
    if len(classes) < 2:
        found = f": {classes[0]!r}" if classes else ""
        raise DataError(
            f"{train_root} holds {len(classes)} class folder(s){found}; a dataset needs two or more, "
            "one subfolder of images per class"
        )
    train_files = _files_by_class(root, train_root, classes)
    test_files: tuple[tuple[str, int], ...] = ()
    if split:
        unknown = sorted(set(_class_folders(root / "test")) - set(classes))
        if unknown:
            raise DataError(f"{root / 'test'} has classes that {train_root} has not: {', '.join(unknown)}")
        test_files = _files_by_class(root, root / "test", classes, required=False)
    counts = Counter(label for _, label in train_files)
    for label, name in enumerate(classes):
        count = counts[label]
        if count < FEW_IMAGES:
            log(f"warning: class {name!r} has only {count} image(s) to train and test on; more would help")
    return FolderDataset(root, layout, tuple(classes), train_files, test_files, cache)


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))


def _files_by_class(root: Path, folder: Path, classes: list[str], required: bool = True) -> tuple[tuple[str, int], ...]:
    files = []
    prefix = len(str(root)) + 1  # relative paths as strings: tens of thousands of Path objects cost seconds
    for label, name in enumerate(classes):
        found = sorted(image_files(str(folder / name))) if (folder / name).is_dir() else []
        if required and not found:
            raise DataError(f"class {name!r} has no image files in {folder / name}")
        files += [(path[prefix:], label) for path in found]
    return tuple(files)


def image_files(folder: str, recursive: bool = True, skipped: list[str] | None = None) -> Iterator[str]:
    """The paths of the image files (by suffix) in ``folder``, by name: the one rule of what is an
    image file of a folder, for training on a folder and for predicting one alike.

    Hidden entries (``.thumbnail.png``, macOS's ``._photo.png``) are left out. Subfolders are
    entered in their place among the names when ``recursive`` (links to folders are not followed,
    so a link loop cannot trap the walk), and otherwise added to ``skipped``. A stream: only the
    sorted names of the folder it is in are held, as strings (a folder of a million images costs
    tens of megabytes, not the seconds and hundreds of megabytes of a Path per file).
    """
    with os.scandir(folder) as entries:
        kept = sorted(
            (entry.name, entry.is_dir(follow_symlinks=False))
            for entry in entries
            if not entry.name.startswith(".")
            and (entry.is_dir(follow_symlinks=False) or os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES)
        )
    for name, is_folder in kept:
        path = os.path.join(folder, name)
        if not is_folder:
            if os.path.isfile(path):  # a link to a file counts, a link to nothing does not
                yield path
        elif recursive:
            yield from image_files(path, recursive, skipped)
        elif skipped is not None:
            skipped.append(path)
