"""A folder as a dataset: its classes and files, found as ImageFolder finds them, and clear refusals."""

from __future__ import annotations

import pytest

from mnist_logreg.data.folders import FolderDataset, open_folder
from mnist_logreg.errors import DataError
from tests.helpers import SHAPES, write_shape_folder


def test_classes_are_the_subfolders_sorted_and_hidden_or_foreign_files_are_left_out(tmp_path):
    root = write_shape_folder(tmp_path / "shapes", per_class=4)
    (root / ".git").mkdir()  # a hidden folder is no class
    (root / "circle" / ".thumbnail.png").write_bytes(b"hidden")
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / "cross" / "more").mkdir()
    (root / "cross" / "more" / "deep.png").write_bytes((root / "cross" / "000.png").read_bytes())
    (root / "bar" / "loop").symlink_to("..", target_is_directory=True)  # a link loop: not followed
    folder = open_folder(root)
    assert folder.classes == SHAPES and folder.name == "shapes" and folder.path == root.resolve()
    names = [name for name, _ in folder.train_files]
    assert len(names) == 13 and "cross/more/deep.png" in names
    assert not any(".thumbnail" in name or name.endswith(".txt") or "loop" in name for name in names)
    assert [label for name, label in folder.train_files if name.startswith("circle/")] == [1] * 4
    assert folder.test_files == () and not folder.has_test_folder


def test_a_train_and_test_split_of_the_folders_own_is_honoured(tmp_path):
    write_shape_folder(tmp_path / "data" / "train", per_class=6)
    write_shape_folder(tmp_path / "data" / "test", per_class=2, seed=1, classes=("bar", "cross"))
    folder = open_folder(tmp_path / "data")
    assert folder.classes == SHAPES and folder.has_test_folder
    assert len(folder.train_files) == 18 and {label for _, label in folder.test_files} == {0, 2}
    assert folder.default_val_size() == 3  # a sixth of the 18 training images


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "no folder at"),
        (lambda root: write_shape_folder(root, 3, classes=("circle",)), "holds 1 class folder(s): 'circle'"),
        (lambda root: root.mkdir(), "holds 0 class folder(s)"),
        (lambda root: (write_shape_folder(root, 3), (root / "empty").mkdir()), "class 'empty' has no image files"),
    ],
)
def test_a_folder_that_is_no_dataset_is_refused_naming_why(tmp_path, make, message):
    make(tmp_path / "data")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_folder(tmp_path / "data")


def test_a_test_class_unknown_to_training_is_refused(tmp_path):
    write_shape_folder(tmp_path / "data" / "train", per_class=3, classes=("bar", "circle"))
    write_shape_folder(tmp_path / "data" / "test", per_class=1, classes=("bar", "star"))
    with pytest.raises(DataError, match=r"has classes that .* has not: star"):
        open_folder(tmp_path / "data")


def test_a_class_with_few_images_is_warned_of(tmp_path):
    said = []
    open_folder(write_shape_folder(tmp_path / "data", per_class=3), log=said.append)
    assert len(said) == 3 and all("has only 3 image(s)" in line for line in said)


def test_the_record_in_model_json_opens_the_same_folder_and_notices_changed_classes(tmp_path):
    root = write_shape_folder(tmp_path / "data", per_class=5)
    folder = open_folder(root, "resize", cache=False)
    assert FolderDataset.from_json(folder.to_json(), list(SHAPES)) == folder
    write_shape_folder(root, per_class=5, classes=("star",))
    with pytest.raises(DataError, match="now holds the classes"):
        FolderDataset.from_json(folder.to_json(), list(SHAPES))
