"""The command line: every bad input ends in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from mnist_logreg import MNISTModel
from mnist_logreg.runs import save_model

from helpers import assert_clean_error, cli, run_process


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--dataset", "emnist"], "argument --dataset: invalid choice: 'emnist'"),
        (["train", "--preset", "fastest"], "argument --preset: invalid choice: 'fastest'"),
        (["train", "--epochs", "0"], "argument --epochs: 0 must be a positive integer"),
        (["train", "--epochs", "two"], "argument --epochs: 'two' is not an integer"),
        (["train", "--lr", "-0.1"], "argument --lr: -0.1 must be a positive number"),
        (["train", "--lr", "nan"], "argument --lr: nan must be a positive number"),
        (["train", "--batch-size", "-5"], "argument --batch-size: -5 must be a positive integer"),
        (["train", "--weight-decay", "-1"], "argument --weight-decay: -1 must be 0 or more"),
        (["train", "--seed", "x"], "argument --seed: 'x' is not an integer"),
        (["train", "--seed", "-1"], "argument --seed: -1 must be 0 or more"),
        (["train", "--momentum", "1.5"], "argument --momentum: 1.5 must be in [0, 1)"),
        (
            ["train", "--resume", "runs/x", "--epochs", "3"],
            "--resume continues a run with the settings it started with; drop --epochs",
        ),
        (["serve", "runs/x", "--port", "70000"], "argument --port: 70000 must be a port number (0-65535)"),
        (["train", "--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        (["fetch", "--dataset", "cifar10"], "argument --dataset: invalid choice: 'cifar10'"),
        (["evaluate", "--split", "train", "runs/x"], "argument --split: invalid choice: 'train'"),
        (["predict"], "the following arguments are required: RUN_DIR"),
        (["predict", "runs/x", "--top-k", "0"], "argument --top-k: 0 must be a positive integer"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_flags_are_one_line_errors(args, message):
    result = cli(*args)
    assert result.returncode == 2
    assert_clean_error(result, message)


def test_a_real_process_reports_bad_input_without_a_traceback(tmp_path):
    assert_clean_error(run_process("train", "--epochs", "-1"), "argument --epochs: -1 must be a positive integer")
    assert_clean_error(run_process("evaluate", tmp_path / "nope"), "no run folder at")


def test_cuda_without_a_gpu_is_a_clean_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")  # the error only exists where there is none
    result = cli("train", "--device", "cuda", "--data-dir", tmp_path)
    assert_clean_error(result, "device='cuda' was asked for, but torch sees no CUDA device; use --device cpu")


def test_a_missing_run_folder(tmp_path):
    assert_clean_error(cli("evaluate", tmp_path / "nope"), "no run folder at")
    assert_clean_error(cli("predict", tmp_path / "nope", "--index", "0"), "no run folder at")


def test_a_corrupt_checkpoint(tmp_path):
    run = tmp_path / "run"
    save_model(run, MNISTModel(), {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784})
    (run / "model.pth").write_bytes(b"\x00" * 100)
    assert_clean_error(cli("evaluate", run), "is not a readable checkpoint")


def test_a_mismatched_checkpoint(tmp_path):
    run = tmp_path / "run"
    save_model(run, MNISTModel(784, 5), {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784})
    result = cli("evaluate", run)
    assert_clean_error(result, "does not match the model in model.json")
    assert "size mismatch for linear.weight" in result.stderr


def test_fetch_from_a_folder_without_the_files(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("fetch", "--dataset", "mnist", "--data-dir", tmp_path / "data", "--from", tmp_path / "empty")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "could not fetch mnist" in result.stderr
    assert "none of the files are in" in result.stderr
    assert "t10k-labels-idx1-ubyte  (sha256 ff7bcfd416de" in result.stderr


NO_TORCH = """
import sys
from mnist_logreg.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:  # --help and argument errors end in argparse's exit
    code = exit_.code
print("torch imported:", "torch" in sys.modules)
sys.exit(code)
"""


def test_help_argument_errors_and_predicting_files_do_not_import_torch(tmp_path):
    """torch takes about a second to import: the commands that need none must not pay for it."""
    import subprocess
    import sys

    from helpers import seven

    save_model(
        tmp_path / "run", MNISTModel(), {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784}
    )
    seven().save(tmp_path / "seven.png")
    for args, status in [
        (["--help"], 0),
        (["train", "--epochs", "0"], 2),
        (["predict", str(tmp_path / "run"), str(tmp_path / "seven.png")], 0),
    ]:
        done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == status, done.stderr
        assert "torch imported: False" in done.stdout, (args, done.stdout[-300:])


def test_resume_needs_an_unfinished_run(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_clean_error(
        cli("train", "--resume", tmp_path / "empty"), "has no resume.pt: it is not an unfinished run folder"
    )
