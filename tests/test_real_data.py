"""Training on the real MNIST and Fashion-MNIST: the accuracy the presets promise.

These read the real files (``make test`` fetches them into data/) and take a few seconds each.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_logreg import MNISTModel, evaluate, fit, predict_image
from mnist_logreg.config import get_preset
from mnist_logreg.data.loaders import to_float_pixels
from mnist_logreg.images.preprocess import preprocess_image
from mnist_logreg.infer.classify import predict_pixels
from mnist_logreg.model.linear import load_weights
from mnist_logreg.report.write import write_report
from mnist_logreg.train.run import evaluate_run
from tests.helpers import run_process, torchrun, train_preset
from tests.photos import MAKERS, image_bytes

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def raw_run(real_data_dir, tmp_path_factory):
    """The best recipe on raw pixels, trained once on MNIST."""
    return train_preset("mnist", "raw", real_data_dir, tmp_path_factory.mktemp("raw") / "run")


def test_raw_preset_reaches_the_raw_pixel_ceiling(raw_run):
    assert raw_run.info.input_transform == "none"
    assert 0.925 <= raw_run.metrics.test_acc < 0.94  # a linear model on raw pixels: about 92.7 %


def test_default_preset_reaches_its_target_on_mnist(real_data_dir, default_run):
    result = default_run
    tmp_path = result.run_dir.parent
    assert (result.info.input_transform, result.info.features) == ("deskew", "pixel-pairs")
    # One linear layer on deskewed pixels and their neighbours' pairs: 0.9850 here (2026-12-04); the
    # bound leaves ten test digits to another CPU's rounding over eight epochs.
    assert result.metrics.test_acc >= 0.984
    # The weight images read as templates: the rarely inked border no longer outweighs the digit.
    from mnist_logreg.images.inputs import fold_to_pixels

    weight = result.model.linear.weight.detach().numpy()[:10]  # the digits' rows: "not a digit" is the last
    weight = np.abs(fold_to_pixels("pixel-pairs", weight)).reshape(10, 28, 28)
    frame = np.ones((28, 28), bool)
    frame[3:-3, 3:-3] = False
    assert weight[:, frame].mean() < 0.5 * weight[:, 7:21, 7:21].mean()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "history.json",
        "metrics.json",
        "model.json",
        "model.pth",
        "weights.npz",
    ]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, get_preset("default").epochs + 1))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_seconds"] == pytest.approx(sum(h["seconds"] for h in history))
    # Complete without the report: the confusion matrix and per-class table come from training.
    assert np.trace(metrics["confusion"]) == round(metrics["test_acc"] * 10000)
    assert [row["class"] for row in metrics["per_class"]] == [str(d) for d in range(10)]
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["splits"] == {"train": 50000, "val": 10000, "test": 10000}
    assert info["hyperparameters"]["optimizer"] == "adam"
    # Evaluating the saved run reproduces the test accuracy measured at the end of training.
    assert evaluate_run(tmp_path / "run", "test", real_data_dir)["accuracy"] == pytest.approx(metrics["test_acc"])
    assert evaluate_run(tmp_path / "run", "val", real_data_dir)["accuracy"] == pytest.approx(metrics["val_acc"])


def test_default_preset_reaches_its_target_on_fashion_mnist(real_data_dir, tmp_path):
    result = train_preset("fashion-mnist", "default", real_data_dir, tmp_path / "run")
    assert result.info.features == "pixel-pairs"
    assert result.metrics.test_acc >= 0.87
    assert result.info.classes[9] == "Ankle boot"
    assert result.info.input_transform == "none"  # deskewing does not help garments
    write_report(result.run_dir, real_data_dir, splits=result.splits)
    per_class = json.loads((result.run_dir / "metrics.json").read_text())["per_class"]
    assert [row["class"] for row in per_class] == list(result.info.classes)
    assert "Ankle boot" in (result.run_dir / "report.html").read_text()


def test_notebook_preset_lands_on_the_lessons_numbers(real_data_dir, tmp_path):
    result = train_preset("mnist", "notebook", real_data_dir, tmp_path / "run")
    val_acc = [h.val_acc for h in result.history]
    assert len(val_acc) == 20
    assert 0.78 <= val_acc[4] <= 0.82  # the lesson: about 0.80 after its first fit(5, 0.001)
    assert 0.85 <= val_acc[19] <= 0.875  # about 0.855 after all four
    assert 0.85 <= result.metrics.test_acc <= 0.875  # about 0.86


def test_the_lessons_own_code_runs_unchanged_on_the_package(real_data_dir, tmp_path):
    from torch.utils.data import DataLoader, random_split
    from torchvision import transforms
    from torchvision.datasets import MNIST

    torch.manual_seed(0)
    dataset = MNIST(root=str(real_data_dir), download=True)  # finds the fetched files: no network
    assert len(dataset) == 60000
    dataset = MNIST(root=str(real_data_dir), train=True, transform=transforms.ToTensor())
    train_ds, val_ds = random_split(dataset, [50000, 10000])
    batch_size = 128
    train_loader = DataLoader(train_ds, batch_size, shuffle=True)
    val_loader = DataLoader(val_ds, batch_size)
    model = MNISTModel()
    history = [evaluate(model, val_loader)]
    history += fit(1, 0.001, model, train_loader, val_loader)
    assert history[0]["val_acc"] < 0.3 < 0.6 < history[-1]["val_acc"]

    test_dataset = MNIST(root=str(real_data_dir), train=False, transform=transforms.ToTensor())
    predicted = [predict_image(test_dataset[i][0], model) for i in range(200)]
    assert all(type(label) is int for label in predicted)  # the lesson prints it as a plain number
    assert sum(label == test_dataset[i][1] for i, label in enumerate(predicted)) > 100  # chance would be 20
    torch.save(model.state_dict(), tmp_path / "mnist-logistic.pth")
    model2 = MNISTModel()
    model2.load_state_dict(torch.load(tmp_path / "mnist-logistic.pth"))
    assert evaluate(model2, val_loader) == evaluate(model, val_loader)


def test_the_cli_trains_evaluates_and_predicts_and_the_same_command_twice_gives_a_bitwise_identical_model(
    real_data_dir, tmp_path
):
    """The default preset for two epochs, as typed, twice: first with the progress bar (tqdm.auto, as a
    user sees it) and no report, then without the bar and with the report. The bar draws no random
    number and moves no batch, and the report reads the model without changing it: the two
    model.pth files are the same bytes. The second run is then evaluated and predicted from."""
    first, run = tmp_path / "first", tmp_path / "run"
    command = ["train", "--epochs", "2", "--data-dir", real_data_dir]
    shown = run_process(*command, "--out", first, "--no-report")
    assert shown.returncode == 0, shown.stderr
    trained = run_process(*command, "--out", run, "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert_bitwise_identical(first, run)
    lines = trained.stdout.splitlines()
    assert lines[0].startswith("Epoch [0], val_loss: ")
    test_acc = float(next(line for line in lines if line.startswith("test_acc: ")).split()[1])
    assert test_acc > 0.9
    for name in ("report.html", "curves.png", "confusion.png", "weights.png", "misclassified.png", "samples.png"):
        assert (run / name).is_file(), name

    evaluated = run_process("evaluate", run, "--json", "--data-dir", real_data_dir)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(test_acc, abs=5e-5)

    predicted = run_process("predict", run, "--index", "0", "--data-dir", real_data_dir)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.startswith("test[0]: predicted 7 (p=")  # the first test digit is a 7
    out_of_range = run_process("predict", run, "--index", "10000", "--data-dir", real_data_dir)
    assert out_of_range.returncode == 1
    assert "--index 10000 is out of range: the test split has 10000 images" in out_of_range.stderr


def assert_bitwise_identical(run_a, run_b) -> None:
    """The same model.pth bytes, the same weights and the same last validation accuracy."""
    assert (run_a / "model.pth").read_bytes() == (run_b / "model.pth").read_bytes()
    first, second = (np.load(run / "weights.npz") for run in (run_a, run_b))
    assert np.array_equal(first["weight"], second["weight"]) and np.array_equal(first["bias"], second["bias"])
    assert (
        json.loads((run_a / "history.json").read_text())[-1]["val_acc"]
        == json.loads((run_b / "history.json").read_text())[-1]["val_acc"]
    )


def plain_resize(image: Image.Image):
    """The naive way, for comparison: grey, resized to 28×28, nothing else (a tensor (1, 28, 28))."""
    grey = np.asarray(image.convert("L").resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    return torch.from_numpy(grey).unsqueeze(0)


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_realistic_photos_and_drawings_are_read_about_as_well_as_the_test_set(default_run, maker):
    """MNIST test digits made into photos on lit paper, drawings on transparent canvases, JPEGs and
    large off-centre pages: preprocessed, the model reads them within a few points of its accuracy
    on the same digits; resized plainly, it reads about one in ten."""
    rng = np.random.default_rng(7)
    images, labels = default_run.splits.tensors("test")
    chosen = rng.choice(len(labels), 150, replace=False)
    model = default_run.model.cpu()
    on_digits = (model.predict(to_float_pixels(images[chosen])) == labels[chosen]).float().mean().item()
    ours = plain = accepted = 0
    for i in chosen:
        picture = MAKERS[maker](images[i, 0].numpy(), rng)
        pixels = preprocess_image(picture)
        ours += int(model.predict(pixels.unsqueeze(0))[0]) == int(labels[i])
        plain += int(model.predict(plain_resize(picture).unsqueeze(0))[0]) == int(labels[i])
        accepted += predict_pixels(pixels, model, default_run.info.classes)["accepted"]
    ours, plain, accepted = ours / len(chosen), plain / len(chosen), accepted / len(chosen)
    on_digits_accepted = np.mean(
        [predict_pixels(to_float_pixels(images[i]), model, default_run.info.classes)["accepted"] for i in chosen]
    )
    print(
        f"\n{maker}: read {ours:.3f} (the digits themselves {on_digits:.3f}); accepted {accepted:.3f} ({on_digits_accepted:.3f})"
    )
    assert ours >= on_digits - 0.05, (ours, on_digits)
    assert plain <= 0.3 and ours >= plain + 0.6, (ours, plain)
    assert accepted >= on_digits_accepted - 0.05, (accepted, on_digits_accepted)  # "not a digit" seldom for a digit


@pytest.fixture(scope="module")
def deskewed_run(real_data_dir, tmp_path_factory):
    """The deskewed-pixel model (the default before pixel pairs), trained once on MNIST."""
    return train_preset("mnist", "deskewed", real_data_dir, tmp_path_factory.mktemp("deskewed") / "run")


def test_each_rung_of_the_ladder_reads_realistic_photos_at_least_as_well(default_run, deskewed_run, raw_run):
    """The same 600 pictures (150 per kind) read by the three models. Pooled, since 150 pictures of
    one kind differ by a few images between random draws."""
    images, labels = default_run.splits.tensors("test")
    runs = {"raw": raw_run, "deskewed": deskewed_run, "pairs": default_run}
    correct = {name: [] for name in runs}
    for maker in sorted(MAKERS):
        rng = np.random.default_rng(11)
        chosen = rng.choice(len(labels), 150, replace=False)
        pictures = torch.stack([preprocess_image(MAKERS[maker](images[i, 0].numpy(), rng)) for i in chosen])
        for name, run in runs.items():
            correct[name].append((run.model.cpu().predict(pictures) == labels[chosen]).float().mean().item())
    mean = {name: np.mean(values) for name, values in correct.items()}
    assert mean["deskewed"] >= mean["raw"] + 0.01, correct
    assert mean["pairs"] >= mean["deskewed"] + 0.01, correct
    assert min(correct["pairs"]) >= 0.93, correct


def test_numbers_written_with_gaps_are_read_about_as_well_as_their_digits(default_run):
    """100 four-digit numbers from MNIST test digits, with gaps, on lit paper as JPEGs: reading the
    whole number right costs almost nothing beyond reading each digit right (p^4). With the run's
    reject rule, a digit the model is unsure of reads as "?", and one it takes for no digit is left
    out of the number: that costs numbers too, and the test bounds how many."""

    from mnist_logreg.infer.classify import predict_pixels
    from mnist_logreg.infer.number import read_image_file
    from mnist_logreg.model.linear import with_threshold
    from tests.written_numbers import compose, on_lit_paper

    images, labels = default_run.splits.tensors("test")
    images, labels = images[:, 0].numpy(), labels.numpy()
    weights, info = load_weights(default_run.run_dir)
    every_part = with_threshold(weights, None, no_reject=True)
    rng = np.random.default_rng(1)
    exact = exact_rejecting = single = 0
    for _ in range(100):
        chosen = rng.choice(len(labels), 4, replace=False)
        photo = on_lit_paper(compose([images[i] for i in chosen], rng, gaps=(8, 24)), rng)
        file = image_bytes(photo)
        number = "".join(str(labels[i]) for i in chosen)
        exact += read_image_file(file, every_part, info)["text"] == number
        exact_rejecting += read_image_file(file, weights, info)["text"] == number
        single += sum(predict_pixels(images[i] / 255, every_part, info.classes)["label"] == labels[i] for i in chosen)
    p = single / 400
    print(f"\nnumbers read exactly: {exact} of 100 (--no-reject), {exact_rejecting} with the run's threshold; p = {p}")
    assert exact / 100 >= 0.80, (exact, p)
    assert exact / 100 >= p**4 - 0.05, (exact, p)
    assert exact_rejecting >= exact - 15, (exact_rejecting, exact)


def test_the_same_train_command_twice_through_the_dataloaders_gives_a_bitwise_identical_model(real_data_dir, tmp_path):
    """The lesson's DataLoaders, first with the progress bar and then without. The raw preset: the
    default's outliers and pen copies, 125,000 images an epoch, take a minute an epoch through the
    DataLoaders, and test_loaders.py checks that both loaders draw the same sample of them each
    epoch. The in-memory loader, with all of them, is checked by the test above."""
    command = ["train", "--preset", "raw", "--epochs", "2", "--loader", "dataloader", "--data-dir", real_data_dir]
    for name, bar in (("first", []), ("second", ["--no-progress"])):
        done = run_process(*command, "--out", tmp_path / name, "--no-report", *bar)
        assert done.returncode == 0, done.stderr
    assert_bitwise_identical(tmp_path / "first", tmp_path / "second")


def test_a_fetch_killed_mid_write_never_leaves_a_bad_file_where_torchvision_reads(real_data_dir, tmp_path):
    """SIGKILL a real `fetch --from` while it writes an image file (its partial file is on disk):
    every file then under torchvision's names passes its checksum, and the next fetch completes."""
    import signal
    import subprocess
    import sys

    from mnist_logreg.data.catalog import DATASETS
    from mnist_logreg.data.fetch import fetch as fetch_files
    from mnist_logreg.data.fetch import from_folder, missing_files
    from mnist_logreg.data.idx import check_idx

    spec = DATASETS["mnist"]
    source, raw = spec.raw_dir(real_data_dir), spec.raw_dir(tmp_path / "data")
    command = [
        sys.executable,
        "-m",
        "mnist_logreg",
        "fetch",
        "--data-dir",
        str(tmp_path / "data"),
        "--from",
        str(source),
    ]
    images = [f.name for f in spec.files if len(f.shape) == 3]  # 47 MB and 7.8 MB: writes that take a while
    kills_mid_write = 0
    for attempt in range(20):
        for installed in raw.glob("*-ubyte"):
            installed.unlink()  # start from nothing each time
        partial = raw / f".{images[attempt % 2]}.partial"
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while process.poll() is None and not partial.exists():
            pass  # the kill lands as soon as the write has begun
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        kills_mid_write += partial.exists()  # left behind: the kill came before the rename
        for idx_file in spec.files:
            path = raw / idx_file.name
            if path.exists():
                check_idx(path.read_bytes(), idx_file, str(path))  # raises DataError if it fails its checksum
        if kills_mid_write >= 4:
            break
    assert kills_mid_write >= 4, f"only {kills_mid_write} of {attempt + 1} kills landed during a write"
    print(f"\n{kills_mid_write} of {attempt + 1} kills landed mid-write; every installed file passed its checksum")
    fetch_files(spec, tmp_path / "data", sources=[from_folder(source)])
    assert missing_files(spec, tmp_path / "data") == []


def test_ctrl_c_during_training_keeps_the_epochs_completed(real_data_dir, tmp_path):
    """A real SIGINT to a real training process: a clear message, and the run so far saved."""
    import os
    import signal
    import subprocess
    import sys

    run = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnist_logreg",
            "train",
            "--preset",
            "notebook",
            "--epochs",
            "500",
            "--data-dir",
            str(real_data_dir),
            "--out",
            str(run),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = [process.stdout.readline() for _ in range(2)]  # two epochs done
    assert lines[1].startswith("Epoch [1], val_loss: ")
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("mnist-logreg: interrupted after ") and message.endswith(
        f"the run so far is saved in {run}; continue it with 'mnist-logreg train --resume {run}'"
    )
    completed = int(message.split("interrupted after ")[1].split()[0])
    assert 2 <= completed < 500
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs_completed"] == completed
    history = json.loads((run / "history.json").read_text())
    assert len(history) == completed
    # The saved weights are those of the last complete epoch: evaluating them gives its val_acc.
    assert evaluate_run(run, "val", real_data_dir)["accuracy"] == pytest.approx(history[-1]["val_acc"])
    assert (run / "resume.pt").is_file()  # unfinished: it can be continued


def train_until(command: list, run, epochs_seen: int, kill_after_s: float = 0.0, processes: int = 1):
    """Start `mnist-logreg train` (under torchrun when ``processes`` > 1), wait for ``epochs_seen``
    epoch lines, then SIGKILL it, every process at once (mid-epoch)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    launcher = [sys.executable, "-m"]
    if processes > 1:
        launcher += ["torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m"]
    process = subprocess.Popen(
        [*launcher, "mnist_logreg", "train", *map(str, command), "--out", str(run), "--no-progress", "--no-report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group: the kill reaches torchrun's workers too
    )
    lines = []
    for line in process.stdout:
        if line.startswith("Epoch ["):
            lines.append(line)
            if len(lines) == epochs_seen:
                break
    assert lines[-1].startswith(f"Epoch [{epochs_seen - 1}], val_loss: "), lines
    time.sleep(kill_after_s)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]  # wall time differs


@pytest.mark.parametrize(
    "loader, epochs, seen, pause",
    [("memory", 30, 3, 0.0), ("dataloader", 2, 1, 0.6)],  # killed in the middle of an epoch
)
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_runs_weights(
    real_data_dir, tmp_path, loader, epochs, seen, pause
):
    command = ["--preset", "notebook", "--epochs", epochs, "--loader", loader, "--data-dir", real_data_dir]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    train_until(command, killed, seen, pause)
    assert (killed / "resume.pt").is_file() and not (killed / "metrics.json").exists()
    resumed = run_process("train", "--resume", killed, "--data-dir", real_data_dir, "--no-progress", "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    done = run_process("train", *command, "--out", whole, "--no-progress", "--no-report")
    assert done.returncode == 0, done.stderr
    assert (killed / "model.pth").read_bytes() == (whole / "model.pth").read_bytes()
    histories = [json.loads((run / "history.json").read_text()) for run in (killed, whole)]
    assert len(histories[0]) == epochs and without_seconds(histories[0]) == without_seconds(histories[1])
    assert sorted(p.name for p in killed.iterdir()) == sorted(p.name for p in whole.iterdir())  # no resume.pt left
    again = run_process("train", "--resume", killed, "--data-dir", real_data_dir)
    assert again.returncode == 1 and "the run is finished" in again.stderr


def test_a_two_process_run_killed_mid_epoch_resumes_under_torchrun_to_the_one_process_weights(real_data_dir, tmp_path):
    command = ["--preset", "notebook", "--epochs", 8, "--data-dir", real_data_dir]
    killed = tmp_path / "killed"
    train_until(command, killed, 3, processes=2)
    assert (killed / "resume.pt").is_file() and not (killed / "metrics.json").exists()
    resume = ["-m", "mnist_logreg", "train", "--resume", killed, "--data-dir", real_data_dir, "--no-progress"]
    resumed = torchrun(*resume, "--no-report", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    epochs = [int(line[7 : line.index("]")]) for line in resumed.stdout.splitlines() if line.startswith("Epoch [")]
    assert epochs[0] >= 3 and epochs == list(range(epochs[0], 8))  # on from the last complete epoch
    whole = train_preset("mnist", "notebook", real_data_dir, tmp_path / "whole", epochs=8).run_dir
    assert weight_difference(killed, whole) < 1e-5
    assert len(json.loads((killed / "history.json").read_text())) == 8
    assert not (killed / "resume.pt").exists()


def test_the_onnx_export_matches_the_run_on_all_10000_test_images_and_on_random_inputs(default_run, tmp_path):
    """onnxruntime on the exported model, fed the images as they are (the graph deskews and maps
    them to pixel pairs itself), against the run's torch-free prediction: the largest difference
    in any probability."""
    import onnxruntime

    from mnist_logreg.images.inputs import apply_input_transform, feature_map
    from mnist_logreg.model.export import export_onnx
    from mnist_logreg.model.linear import load_weights, probabilities

    path = export_onnx(default_run.run_dir, tmp_path / "model.onnx")
    weights, info = load_weights(default_run.run_dir)
    assert (info.input_transform, info.features) == ("deskew", "pixel-pairs")
    images, _ = default_run.splits.tensors("test")
    test_pixels = to_float_pixels(images).numpy()  # (10000, 1, 28, 28) in [0, 1]
    random_pixels = np.random.default_rng(0).random((500, 1, 28, 28), dtype=np.float32)
    session = onnxruntime.InferenceSession(str(path))
    for name, pixels in (("test images", test_pixels), ("random inputs", random_pixels)):
        got = np.concatenate([session.run(None, {"images": chunk})[0] for chunk in np.array_split(pixels, 20)])
        expected = np.concatenate(
            [
                probabilities(weights, feature_map("pixel-pairs", apply_input_transform("deskew", chunk)))
                for chunk in np.array_split(pixels, 20)
            ]
        )
        largest = float(np.abs(got - expected).max())
        print(f"\nONNX vs the run, {len(pixels)} {name}: largest |Δ probability| {largest:.2e}")
        assert got.shape == (len(pixels), 11) and largest <= 1e-5, name  # the digits, then "not a digit"


def weight_difference(run_a, run_b) -> float:
    """The largest difference between two runs' weights and biases."""
    a, b = np.load(run_a / "weights.npz"), np.load(run_b / "weights.npz")
    return max(float(np.abs(a[name] - b[name]).max()) for name in ("weight", "bias"))


def test_torchrun_trains_the_default_preset_in_two_processes_as_one_process_does(default_run, real_data_dir, tmp_path):
    run = tmp_path / "two"
    command = ["-m", "mnist_logreg", "train", "--data-dir", real_data_dir, "--out", run, "--no-progress", "--no-report"]
    finished = torchrun(*command, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("test_acc:") == 1 and finished.stdout.count("Epoch [5]") == 1  # rank 0 alone speaks
    assert json.loads((run / "model.json").read_text())["world_size"] == 2
    test_acc = json.loads((run / "metrics.json").read_text())["test_acc"]
    assert abs(test_acc - default_run.metrics.test_acc) <= 0.003
    # The same steps, up to rounding: Adam divides each step by its gradient's running size, and
    # the weights of rarely inked pixel pairs have tiny gradients, whose rounding differs between
    # the mean of two shards' means and one batch's mean. After one epoch the weights agree to
    # 1e-5 (below); over eight, with the outliers' rarely inked pairs, the rounding grows to a few
    # hundredths in a few weights, so the two models are compared by what they predict.
    assert agreement(run, default_run.run_dir, default_run.splits) >= 0.995  # measured: 0.9975


def agreement(run_a, run_b, splits) -> float:
    """The share of test images that two runs give the same class and the same acceptance."""
    from mnist_logreg.infer.classify import predict_pixels

    images, _ = splits.tensors("test")
    runs = [load_weights(run) for run in (run_a, run_b)]
    same = 0
    for image in to_float_pixels(images[:2000]).numpy():
        a, b = (predict_pixels(image, weights, info.classes) for weights, info in runs)
        same += (a["label"], a["accepted"]) == (b["label"], b["accepted"])
    return same / 2000


def test_after_one_epoch_two_processes_hold_the_weights_of_one(real_data_dir, tmp_path):
    """The default recipe, pixel pairs and the outliers of "not a digit" included."""
    one = train_preset("mnist", "default", real_data_dir, tmp_path / "one", epochs=1).run_dir
    two = tmp_path / "two"
    command = ["-m", "mnist_logreg", "train", "--data-dir", real_data_dir, "--preset", "default", "--epochs", "1"]
    command += ["--out", two, "--no-report"]
    finished = torchrun(*command, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert weight_difference(one, two) < 1e-5


def test_the_progress_bar_leaves_both_loaders_on_the_same_batches(real_data_dir, tmp_path):
    """With the bar on (tqdm.auto, as a user sees it) and off, on the lesson's DataLoaders and from
    memory: one epoch ends on bitwise the same weights. The raw preset: the bar does not depend on
    the recipe, and test_loaders.py checks that both loaders see the same deskewed images and extras.
    The DataLoaders without the bar: two epochs of them, with and without it, end on the same
    weights in test_the_same_train_command_twice_through_the_dataloaders_gives_a_bitwise_identical_model."""
    weights = {}
    for loader, bars in (("dataloader", ["on"]), ("memory", ["on", "off"])):
        for bar in bars:
            run = tmp_path / f"{loader}-{bar}"
            flags = ["--no-progress"] if bar == "off" else []
            command = ["train", "--preset", "raw", "--epochs", "1", "--loader", loader, "--data-dir", real_data_dir]
            command += ["--no-report"]
            done = run_process(*command, "--out", run, *flags)
            assert done.returncode == 0, done.stderr
            weights[loader, bar] = (run / "model.pth").read_bytes()
    assert len(set(weights.values())) == 1, [key for key in weights if weights[key] != weights["memory", "off"]]


def test_a_diverging_learning_rate_stops_with_a_message_naming_it(real_data_dir, tmp_path):
    done = run_process("train", "--lr", "1e30", "--epochs", "1", "--data-dir", real_data_dir, "--out", tmp_path / "run")
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("mnist-logreg: error: the training loss became nan at step ")
    assert "with --lr 1e+30; try a smaller --lr; no epoch was complete, so nothing was saved" in message
    assert not (tmp_path / "run" / "model.pth").exists()


def test_predicting_a_dataset_image_takes_the_options_files_take(default_run, real_data_dir, tmp_path):
    run = default_run.run_dir
    common = ["--index", "0", "--data-dir", real_data_dir]
    shown = run_process("predict", run, *common, "--top-k", "2")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("test[0]: predicted 7 (p=") and "true label 7; top 2: 7 " in shown.stdout
    saved = tmp_path / "seen"
    answered = run_process(
        "predict", run, *common, "--json", "--top-k", "4", "--save-preprocessed", saved, "--explain", tmp_path / "why"
    )
    assert answered.returncode == 0, answered.stderr
    (answer,) = json.loads(answered.stdout)
    assert answer["path"] == "test[0]" and answer["class"] == "7" and answer["true_class"] == "7"
    assert len(answer["top_k"]) == 4
    assert [p.name for p in saved.iterdir()] == ["test-00000.png"]
    assert [p.name for p in (tmp_path / "why").iterdir()] == ["test-00000.png"]


def test_a_report_needs_no_torch(default_run, real_data_dir):
    """Importing torch alone took longer than drawing every figure: the report reads weights.npz and
    the dataset's files with numpy."""
    import subprocess
    import sys

    from tests.helpers import NO_TORCH

    args = ["report", str(default_run.run_dir), "--data-dir", str(real_data_dir)]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torch imported: False" in done.stdout
    assert (default_run.run_dir / "report.html").is_file() and (default_run.run_dir / "deskew.png").is_file()


# ---------------------------------------------------------------------------------------------
# "Not a digit": the default run's reject class and calibration
# ---------------------------------------------------------------------------------------------


def test_the_default_run_is_calibrated_and_keeps_at_least_95_percent_of_test_digits(default_run):
    metrics, info = default_run.metrics, default_run.info
    print(f"\nreject: {metrics.reject}\ncalibration: {metrics.calibration}")
    print(f"temperature {info.temperature:.3f}, threshold {info.reject['threshold']:.3f}")
    assert info.reject["class"] == "not a digit"
    assert info.reject["outliers"] == {"drawn": 20000, "fashion-mnist": 6000}  # 0.4 and 0.12 per training digit
    assert 0.5 < info.reject["threshold"] < 1 and info.temperature > 0
    assert "threshold" not in metrics.reject and "temperature" not in metrics.calibration  # model.json says them
    assert metrics.reject["val_accepted"] >= 0.96  # the share the threshold is chosen to accept
    assert metrics.reject["test_accepted"] >= 0.95
    assert metrics.reject["test_acc_accepted"] >= 0.995
    assert metrics.calibration["ece_after"] <= 0.01


def test_the_reject_class_costs_the_digits_no_more_than_0_002(real_data_dir, default_run, tmp_path):
    without = train_preset("mnist", "default", real_data_dir, tmp_path / "run", reject=False)
    print(f"\ntest accuracy with the reject class {default_run.metrics.test_acc}, without {without.metrics.test_acc}")
    assert without.info.reject is None and without.metrics.reject is None
    assert default_run.metrics.test_acc >= without.metrics.test_acc - 0.002


def test_held_out_handwritten_letters_are_rejected_and_scored_below_the_digits(default_run):
    """Letters from handwriting fonts (tests/letters.py): no outlier came from a font or a letter."""
    from mnist_logreg.infer.classify import predict_image_file, predict_pixels
    from mnist_logreg.model.calibration import digit_scores
    from mnist_logreg.model.metrics import auroc
    from tests.letters import letter_photos

    weights, info = load_weights(default_run.run_dir)
    letters = []
    for font, letter, photo in letter_photos():
        result = predict_image_file(image_bytes(photo), weights, info)
        letters.append((font, letter, result))
    rejected = np.mean([not result["accepted"] for _, _, result in letters])
    images, labels = default_run.splits.tensors("test")
    digit_probabilities = np.array(
        [predict_pixels(images[i] / 255, weights, info.classes)["probabilities"] for i in range(len(labels))]
    )
    letter_probabilities = np.array([result["probabilities"] for _, _, result in letters])
    area = auroc(digit_scores(digit_probabilities, 10), digit_scores(letter_probabilities, 10))
    taken = sorted({letter for _, letter, result in letters if result["accepted"]})
    print(f"\n{len(letters)} letters: {rejected:.3f} rejected, AUROC {area:.4f}; accepted among them: {taken}")
    assert rejected >= 0.80
    assert area >= 0.95


def test_blank_noise_and_single_dot_images_are_all_rejected(default_run):
    from mnist_logreg.infer.classify import predict_image_file, predict_pixels
    from tests.letters import single_dot, uniform_noise

    weights, info = load_weights(default_run.run_dir)
    rng = np.random.default_rng(3)
    pixels = [np.zeros((28, 28)), np.ones((28, 28))]
    pixels += [rng.uniform(0, 1, (28, 28)) for _ in range(20)]
    for row, column in rng.integers(0, 28, (20, 2)):  # one lit pixel, anywhere
        dot = np.zeros((28, 28))
        dot[row, column] = 1.0
        pixels.append(dot)
    for image in pixels:
        assert not predict_pixels(image, weights, info.classes)["accepted"]
    for photo in [single_dot()] + [uniform_noise(seed) for seed in range(10)]:
        result = predict_image_file(image_bytes(photo), weights, info)
        assert not result["accepted"] and result["class"] == "not a digit", result["top_k"]


def test_read_leaves_a_letter_out_of_the_number_and_lists_it_as_rejected(default_run):
    """A12 on a note: the A is listed, not accepted, and the number is 12."""
    from PIL import Image, ImageDraw, ImageFont

    from mnist_logreg.infer.number import read_image_file
    from tests.letters import fonts
    from tests.written_numbers import compose, on_lit_paper

    images, labels = default_run.splits.tensors("test")
    images, labels = images[:, 0].numpy(), labels.numpy()
    one, two = (images[np.flatnonzero(labels == digit)[0]] for digit in (1, 2))
    letter = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(letter).text((14, 14), "A", fill=255, font=ImageFont.truetype(str(fonts()[0]), 24), anchor="mm")
    rng = np.random.default_rng(2)
    photo = on_lit_paper(compose([np.asarray(letter), one, two], rng, gaps=(20, 30)), rng)
    reading = read_image_file(image_bytes(photo), default_run.model, default_run.info)
    assert reading["text"] == "12", reading
    assert [digit["accepted"] for digit in reading["digits"]] == [False, True, True]
    assert reading["digits"][0]["label"] is None


# ---------------------------------------------------------------------------------------------
# Real digits in any pen (data/pens.py; tests/pens.py makes the test sets, from MNIST's test digits)
# ---------------------------------------------------------------------------------------------


# Floors the default run must reach (docs/not-a-digit.md has what the bench measured).
PNG_FLOOR = {"accepted": 0.95, "right": 0.99}
PENS_FLOOR = {
    "thick": (0.80, 0.95),
    "fine": (0.83, 0.98),
    "blurred": (0.62, 0.97),
    "low-res": (0.85, 0.97),
    "faint": (0.88, 0.98),
    "warped": (0.92, 0.98),
}  # accepted, right among the accepted
FONT_FLOOR = {"top_right": 0.90, "accepted": 0.83}


def test_the_default_run_trains_on_each_pen_and_records_it(default_run):
    from mnist_logreg.config import PEN_COPIES_PER_DIGIT, PEN_SHARES
    from mnist_logreg.data.pens import PENS

    pens = default_run.info.pens
    assert set(pens["counts"]) == set(PEN_SHARES) == set(PENS) and pens["copies_per_digit"] == PEN_COPIES_PER_DIGIT
    assert sum(pens["counts"].values()) == default_run.info.splits["train"] / 4  # a copy of a quarter of the digits
    share = {pen: count / sum(pens["counts"].values()) for pen, count in pens["counts"].items()}
    total = sum(PEN_SHARES.values())
    assert all(abs(share[pen] - PEN_SHARES[pen] / total) < 0.01 for pen in PEN_SHARES), share
    assert default_run.info.recipe["pens"] is True


def test_a_vertical_stroke_of_any_pen_width_is_an_accepted_1(default_run):
    from tests.pens import score_strokes

    weights, info = load_weights(default_run.run_dir)
    answers = score_strokes(weights, info)
    print("\nvertical strokes:", {width: (a["state"], a["class"]) for width, a in answers.items()})
    assert all(a["accepted"] and a["class"] == "1" for a in answers.values()), answers


def test_mnist_test_digits_as_png_files_are_accepted_as_the_arrays_are(default_run):
    from tests.pens import score_digit_files

    weights, info = load_weights(default_run.run_dir)
    images, labels = default_run.splits.tensors("test")
    scored = score_digit_files(weights, info, images[:, 0].numpy(), labels.numpy())
    print(f"\nMNIST test digits as PNG files: {scored}")
    assert scored["accepted"] >= PNG_FLOOR["accepted"] and scored["right"] >= PNG_FLOOR["right"]


@pytest.fixture(scope="module")
def pens_scores(default_run):
    from tests.pens import score_pens

    weights, info = load_weights(default_run.run_dir)
    images, labels = default_run.splits.tensors("test")
    scores = score_pens(weights, info, images[:, 0].numpy(), labels.numpy())
    print("\npens test set:", {pen: (round(s["accepted"], 3), round(s["right"], 3)) for pen, s in scores.items()})
    return scores


@pytest.mark.parametrize("pen", sorted(PENS_FLOOR))
def test_each_pen_of_the_pens_test_set_is_accepted_and_read_right(pens_scores, pen):
    accepted, right = PENS_FLOOR[pen]
    assert pens_scores[pen]["accepted"] >= accepted and pens_scores[pen]["right"] >= right, pens_scores[pen]


def test_digits_in_handwriting_fonts_are_read_and_accepted(default_run):
    from tests.pens import score_font_digits

    weights, info = load_weights(default_run.run_dir)
    scored = score_font_digits(weights, info)
    print(f"\nhandwriting-font digits: {scored}")
    assert scored["top_right"] >= FONT_FLOOR["top_right"] and scored["accepted"] >= FONT_FLOOR["accepted"]


def test_tuning_on_one_writer_reads_that_hand_and_keeps_mnist(default_run, real_data_dir, tmp_path):
    """The writer the default run reads worst of the fonts, learnt from 10 photos per digit: its 150
    held-out photos read right, MNIST's test digits as before within 0.003, the handwritten letters
    refused as before within 0.02, and the run itself unchanged."""
    from tests.letters import fonts, letters_refused
    from tests.writers import FOLDER_FONT, write_writer

    font = next(font for font in fonts() if font.stem == FOLDER_FONT)
    folder = write_writer(tmp_path / "writer", font, k=10)
    run = default_run.run_dir
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    tuned = run_process("tune", run, "--dataset", folder, "--out", tmp_path / "tuned", "--data-dir", real_data_dir)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    tuned_info = json.loads((tmp_path / "tuned" / "model.json").read_text())
    result, threshold = tuned_info["tuned_from"], tuned_info["reject"]["threshold"]
    print(
        f"\ntuned on {FOLDER_FONT}, k = 10: before {result['before']}, after {result['after']}, threshold {threshold}"
    )
    assert threshold >= json.loads((run / "model.json").read_text())["reject"]["threshold"]  # never lowered by a tune
    assert result["before"]["writer"]["acc"] < 0.8 and result["after"]["writer"]["acc"] >= 0.95
    assert result["after"]["test"]["acc"] >= result["before"]["test"]["acc"] - 0.003  # measured: 0.0019
    assert result["non_digits"] == 100  # its 2-7 and 9 mirrored, its 1, 4 and 7 turned: ten of each
    assert letters_refused(tmp_path / "tuned") >= letters_refused(run) - 0.02  # measured: 0.010
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name in before} == before


def test_the_documented_letters_folder_trains_and_reads_unseen_fonts(tmp_path):
    """docs/your-own-images.md's example: capital letters from eleven handwriting fonts, tested on
    three fonts the training never saw, through the command line as the page runs it."""
    from tests.letters import write_letter_folder

    folder = write_letter_folder(tmp_path / "letters")
    trained = run_process(
        "train", "--dataset", folder, "--layout", "digits", "--out", tmp_path / "run", "--no-progress"
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    print(
        f"\nletters: test accuracy {metrics['test_acc']:.4f} on {info['splits']['test']} letters in unseen fonts, "
        f"batches of {info['hyperparameters']['batch_size']}"
    )
    assert info["classes"] == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ") and info["source"]["unreadable"] == 0
    # 2,145 training letters make 5 batches of 512 an epoch: the small-dataset rule takes 85 (25 an epoch)
    assert info["batch_rule"] == {"min_steps_per_epoch": 25, "preset_batch_size": 512, "batch_size": 85}
    assert metrics["test_acc"] >= 0.91  # 0.9003 in batches of 512; 0.9274 in batches of 85 (2026-12-04)
