"""What the tests share: fake IDX datasets and folders of shapes, model.json records and run
folders of untrained models, training a preset, the command run in this process or a new one
(torchrun's too), and small tensors with a known slant.

torch is imported by the helpers that use it, not with the module: pytest-xdist's controller loads
it (through conftest.py) and runs no test. The benchmarks, which measure memory, import the
torch-free ``tests.photos``, ``tests.servers`` and ``tests.letters``. The drawn 7 and image files are
``tests.photos``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from mnist_logreg.cli import main
from mnist_logreg.config import TrainConfig
from mnist_logreg.data.catalog import UBYTE_TYPE_CODE, DatasetSpec, IdxFile

if TYPE_CHECKING:
    import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = REPO_ROOT / "data"

FAKE_TRAIN, FAKE_TEST = 300, 60


def write_idx(path: Path, array: np.ndarray) -> bytes:
    """Write a uint8 array as an IDX file, the format fetch reads, and return the bytes written."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", (UBYTE_TYPE_CODE << 8) | array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    content = header + array.tobytes()
    Path(path).write_bytes(content)
    return content


def make_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """Learnable fake digits: class k lights a bar at row 2k plus noise, as uint8 (N, 28, 28)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label + 3 : 2 * label + 6, 4:24] = rng.integers(180, 256, size=(3, 20))
    return images


FAKE_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_fake_files(folder: Path, seed: int = 0) -> dict[str, bytes]:
    """Write the four IDX files of a small fake dataset into ``folder``; return their contents."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = rng.integers(0, 10, FAKE_TRAIN).astype(np.uint8)
    test_labels = rng.integers(0, 10, FAKE_TEST).astype(np.uint8)
    arrays = dict(
        zip(
            FAKE_FILES,
            (make_images(train_labels, seed + 1), train_labels, make_images(test_labels, seed + 2), test_labels),
            strict=True,
        )
    )
    return {name: write_idx(folder / name, array) for name, array in arrays.items()}


def fake_spec(contents: dict[str, bytes], sources=()) -> DatasetSpec:
    shapes = {
        "train-images-idx3-ubyte": (FAKE_TRAIN, 28, 28),
        "train-labels-idx1-ubyte": (FAKE_TRAIN,),
        "t10k-images-idx3-ubyte": (FAKE_TEST, 28, 28),
        "t10k-labels-idx1-ubyte": (FAKE_TEST,),
    }
    files = tuple(
        IdxFile(name, shapes[name], hashlib.sha256(content).hexdigest()) for name, content in contents.items()
    )
    return DatasetSpec(
        name="fake-mnist",
        folder="MNIST",
        files=files,
        classes=tuple(str(d) for d in range(10)),
        sources=tuple(sources),
    )


def read_fake_files(folder: Path) -> dict[str, bytes]:
    """The contents of the fake dataset ``write_fake_files`` wrote into ``folder``."""
    return {name: (folder / name).read_bytes() for name in FAKE_FILES}


def fit_data(train: int = 241, batch_size: int = 45):
    """Fake digits for ``fit``: (train images, labels), one validation batch, and a batch size.

    The odd batch size splits each batch unevenly over two processes (23 and 22 images), where
    the mean of the shards' mean gradients (what DDP computes) is not the batch's mean.
    """
    import torch

    labels = np.random.default_rng(5).integers(0, 10, train + 60)
    images = torch.from_numpy(make_images(labels, seed=6)).unsqueeze(1).float().div(255)
    labels = torch.from_numpy(labels)
    return (images[:train], labels[:train]), (images[train:], labels[train:]), batch_size


def fit_fake_digits(closed_form: bool | None = None, rank: int = 0, world_size: int = 1):
    """``fit`` for three epochs of Adam on ``fit_data``, on shard ``rank`` of every batch: (model, history)."""
    import torch

    from mnist_logreg import MNISTModel, fit
    from mnist_logreg.data.loaders import TensorLoader, shard_batches

    (images, labels), val, batch_size = fit_data()
    torch.manual_seed(0)
    model = MNISTModel()
    train = TensorLoader(images, labels, batch_size, shuffle=True, generator=torch.Generator().manual_seed(1))
    train = shard_batches(train, rank, world_size)
    history = fit(3, 0.05, model, train, [val], torch.optim.Adam, closed_form=closed_form, verbose=False)
    return model, history


# The pipeline's recipe on the fake dataset, trained by one process and by two (data_parallel_worker.py).
DATA_PARALLEL_CONFIG = TrainConfig(
    epochs=3, lr=0.05, batch_size=48, optimizer="adam", val_size=60, input_transform="deskew"
)


DIGITS_INFO = {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784}  # a model.json


def model_json(**changes) -> dict:
    """A run's model.json: a digits model's, with ``changes`` (another dataset, its classes, a transform...)."""
    return DIGITS_INFO | changes


def untrained_run(folder: Path, **info) -> Path:
    """A run folder holding an untrained MNISTModel (seed 0), its model.json DIGITS_INFO with ``info``'s fields."""
    import torch

    from mnist_logreg import MNISTModel
    from mnist_logreg.model.run_folder import save_model

    torch.manual_seed(0)
    save_model(folder, MNISTModel(), DIGITS_INFO | info)
    return folder


REJECT_INFO = {"class": "not a digit", "threshold": 0.5, "accept_rate": 0.96, "outliers": {"drawn": 0}}


def rejecting_run(folder: Path, temperature: float = 2.0, **info) -> Path:
    """A run folder whose untrained model (seed 0) has the eleventh output "not a digit", its bias so
    large that every image is rejected; model.json gives the ``temperature``, REJECT_INFO and ``info``'s fields."""
    import torch

    from mnist_logreg import MNISTModel
    from mnist_logreg.model.run_folder import save_model

    torch.manual_seed(0)
    model = MNISTModel(reject=True)
    with torch.no_grad():
        model.linear.bias[10] = 50.0
    model.input_transform = info.get("input_transform", "none")
    save_model(folder, model, DIGITS_INFO | {"reject": REJECT_INFO, "temperature": temperature} | info)
    return folder


def fetched_fake_dataset(root: Path) -> tuple[DatasetSpec, Path]:
    """A fake dataset written under ``root`` and fetched into ``root/data``: (spec, data_dir)."""
    from mnist_logreg.data.fetch import fetch, from_folder

    contents = write_fake_files(root / "source")
    spec = fake_spec(contents, sources=[from_folder(root / "source")])
    fetch(spec, root / "data")
    return spec, root / "data"


def train_preset(dataset, preset: str, data_dir, run_dir, **overrides):
    """Train a preset (with ``overrides``) quietly into ``run_dir``; return the RunResult."""
    from mnist_logreg.config import get_preset
    from mnist_logreg.train.run import train_run

    config = get_preset(preset, dataset if isinstance(dataset, str) else "mnist").updated(**overrides)
    return train_run(
        dataset, config, preset=preset, data_dir=data_dir, run_dir=run_dir, verbose=False, log=lambda message: None
    )


def run_process(*args, cwd=None) -> subprocess.CompletedProcess:
    """The real command in a new process: what a user sees, exit code and all."""
    return subprocess.run(
        [sys.executable, "-m", "mnist_logreg", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def torchrun(*args, processes: int = 2, cwd=None) -> subprocess.CompletedProcess:
    """torchrun starting ``processes`` copies of a script or ``-m module`` on this machine (gloo on the CPU)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # a script of the tests imports ``tests.helpers``
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600, env=env)


def cli(*args) -> subprocess.CompletedProcess:
    """The command run in this process (fast): same exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


# A command run in a fresh interpreter that then says whether it imported torch.
NO_TORCH = """
import sys
from mnist_logreg.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:  # --help and argument errors end in argparse's exit
    code = exit_.code
print("torch imported:", "torch" in sys.modules)
print("beyond the standard library:", sorted(name for name in ("numpy", "cv2", "PIL", "torch") if name in sys.modules))
sys.exit(code)
"""


def assert_clean_error(result, message):
    """A non-zero exit, no traceback, and one line of error (besides lines saying what was under way: "...")."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.endswith(" ...")]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def moments(image: torch.Tensor) -> tuple[float, float, float, float]:
    """(centre row, centre column, var(row), cov(row, column)) of an image's ink, in float64."""
    import torch

    ink = image.reshape(28, 28).double()
    rows, cols = torch.meshgrid(
        torch.arange(28.0, dtype=torch.float64), torch.arange(28.0, dtype=torch.float64), indexing="ij"
    )
    mass = ink.sum()
    cy, cx = (ink * rows).sum() / mass, (ink * cols).sum() / mass
    var_row = (ink * (rows - cy) ** 2).sum() / mass
    cov = (ink * (rows - cy) * (cols - cx)).sum() / mass
    return float(cy), float(cx), float(var_row), float(cov)


def slanted_bar(slant: float, centre=(12.0, 15.0)) -> torch.Tensor:
    """A 3-px-wide bar, 16 rows tall, leaning by ``slant`` columns per row, drawn anti-aliased."""
    import torch

    image = Image.new("F", (28 * 8, 28 * 8), 0.0)  # drawn 8× larger, then box-filtered: soft edges
    draw = ImageDraw.Draw(image)
    cy, cx = centre
    top, bottom = cy - 8, cy + 8
    draw.line(
        [
            ((cx + slant * (top - cy) + 0.5) * 8, (top + 0.5) * 8),
            ((cx + slant * (bottom - cy) + 0.5) * 8, (bottom + 0.5) * 8),
        ],
        fill=1.0,
        width=24,
    )
    small = image.resize((28, 28), Image.Resampling.BOX)
    return torch.from_numpy(np.array(small, dtype=np.float32)).clamp(0, 1)


def random_batch(n=37, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


SHAPES = ("bar", "circle", "cross")  # the classes of ``write_shape_folder``


def draw_shape(kind: str, rng: np.random.Generator, size: int = 64, other_hand: bool = False) -> Image.Image:
    """A dark pen shape on light paper, placed and sized at random: a bar, a circle or a cross; in
    ``other_hand``, the bar lies down and the circle is drawn square."""
    image = Image.new("L", (size, size), int(rng.integers(200, 245)))
    draw = ImageDraw.Draw(image)
    x, y = (int(v) for v in rng.integers(4, size // 3, 2))
    side, width = int(rng.integers(size // 3, size // 2)), int(rng.integers(3, 7))
    if kind == "circle":
        shape = draw.rectangle if other_hand else draw.ellipse
        shape([x, y, x + side, y + side], outline=20, width=width)
    elif kind == "cross":
        draw.line([x, y, x + side, y + side], fill=20, width=width)
        draw.line([x + side, y, x, y + side], fill=20, width=width)
    elif other_hand:
        draw.line([x, y + side // 2, x + side, y + side // 2], fill=20, width=width)
    else:
        draw.line([x + side // 2, y, x + side // 2, y + side], fill=20, width=width)
    return image


def write_shape_folder(root: Path, per_class: int = 30, seed: int = 0, classes=SHAPES) -> Path:
    """A folder dataset of drawn shapes, one subfolder per class (ImageFolder's layout), PNG files."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            draw_shape(kind, rng).save(root / kind / f"{n:03d}.png")
    return root


def lying(seed: int) -> bytes:
    """A bar as the writer draws it: lying down, which the run has never seen."""
    buffer = io.BytesIO()
    draw_shape("bar", np.random.default_rng(seed), other_hand=True).save(buffer, format="PNG")
    return buffer.getvalue()
