"""The command line: every bad input ends in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json

import pytest

from mnist_logreg import MNISTModel
from mnist_logreg.cli import build_parser, is_loopback, train_config
from mnist_logreg.model.run_folder import save_model
from tests.helpers import NO_TORCH, assert_clean_error, cli, model_json, run_process, train_preset


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--dataset", "emnist"],
            "argument --dataset: 'emnist' is neither one of ['fashion-mnist', 'mnist'] nor a folder",
        ),
        (["fetch", "--dataset", "emnist"], "argument --dataset: invalid choice: 'emnist'"),
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
    result = cli("train", "--device", "cuda", "--data-dir", tmp_path, "--out", tmp_path / "run")
    assert result.returncode == 2  # a bad flag, as argparse answers one
    assert_clean_error(result, "argument --device: cuda was asked for, but torch sees no CUDA device; use --device cpu")
    assert "see 'mnist-logreg train --help'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_the_reject_class_on_a_dataset_of_other_classes_is_a_bad_combination_of_flags(tmp_path):
    result = cli("train", "--dataset", "fashion-mnist", "--reject", "--data-dir", tmp_path, "--out", tmp_path / "run")
    assert result.returncode == 2
    assert_clean_error(result, "--reject learns 'not a digit', and fashion-mnist's classes are not the digits 0-9")


def test_version_prints_the_installed_packages_version():
    from mnist_logreg.model.run_folder import package_version

    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"mnist-logreg {package_version()}\n"
    assert package_version() != "unknown"


@pytest.mark.parametrize("command", ["predict", "read"])
def test_the_reject_flags_help_reads_as_english(command):
    text = " ".join(build_parser().commands[command].format_help().split())
    assert "every a" not in text and "every an" not in text
    assert "for digits" in text and "when their likeliest digit's probability is below P" in text


@pytest.mark.parametrize("output", [["--json"], [], ["--jsonl"]])
def test_output_piped_into_a_reader_that_stops_early_ends_quietly(run_dir, tmp_path, output):
    import subprocess
    import sys

    from PIL import Image

    folder = tmp_path / "many"
    folder.mkdir()
    bar = Image.new("L", (28, 28), 0)
    bar.paste(255, (12, 4, 16, 24))
    for i in range(600):  # with ten classes a row, twice the 64 KiB a pipe's buffer holds, however short the path
        bar.save(folder / f"{i:03d}.png")
    reader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnist_logreg",
            "predict",
            str(run_dir),
            str(folder),
            "--workers",
            "1",
            "--top-k",
            "10",
            *output,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader.stdout.readline()
    reader.stdout.readline()
    reader.stdout.close()  # as `| head -2` does
    stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == 1
    assert stderr == ""


def test_a_missing_run_folder(tmp_path):
    assert_clean_error(cli("evaluate", tmp_path / "nope"), "no run folder at")
    assert_clean_error(cli("predict", tmp_path / "nope", "--index", "0"), "no run folder at")


def test_a_corrupt_checkpoint(tmp_path):
    run = tmp_path / "run"
    save_model(run, MNISTModel(), model_json())
    (run / "model.pth").write_bytes(b"\x00" * 100)
    assert_clean_error(cli("evaluate", run), "is not a readable checkpoint")


def test_a_mismatched_checkpoint(tmp_path):
    run = tmp_path / "run"
    save_model(run, MNISTModel(784, 5), model_json())
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


def test_help_argument_errors_and_predicting_files_do_not_import_torch(tmp_path):
    """torch takes about a second to import: the commands that need none must not pay for it."""
    import subprocess
    import sys

    from tests.photos import seven

    save_model(tmp_path / "run", MNISTModel(), model_json())
    seven().save(tmp_path / "seven.png")
    for args, status in [
        (["--help"], 0),
        (["train", "--epochs", "0"], 2),
        (["predict", str(tmp_path / "run"), str(tmp_path / "seven.png")], 0),
    ]:
        done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == status, done.stderr
        assert "torch imported: False" in done.stdout, (args, done.stdout[-300:])
        if args[0] != "predict":  # parsing arguments needs the standard library alone
            assert "beyond the standard library: []" in done.stdout, (args, done.stdout[-300:])


def test_resume_needs_an_unfinished_run(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_clean_error(
        cli("train", "--resume", tmp_path / "empty"), "has no resume.pt: it is not an unfinished run folder"
    )


def every_action():
    """(command name, argparse action) of every option and argument of every command."""
    from mnist_logreg.cli import build_parser

    parser = build_parser()
    for name, command in parser.commands.items():
        for action in command._actions:
            if action.dest != "help":
                yield name, action


def test_every_flag_has_help_and_no_help_prints_a_default_of_none():
    for name, action in every_action():
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    for name in ("fetch", "train", "evaluate", "report", "compare", "predict", "export", "read", "serve"):
        text = cli(name, "--help").stdout
        assert "(default: None)" not in text and "(default: False)" not in text, name
        # each default said once: a help that names its default gets no second one
        for line in " ".join(text.split()).split(" --"):
            assert line.count("(default") <= 1, (name, line)


def test_train_help_says_settings_come_from_the_preset():
    text = " ".join(cli("train", "--help").stdout.split())
    for flag in ("--epochs", "--lr", "--batch-size", "--momentum", "--weight-decay", "--schedule", "--seed"):
        after = text.split(f"{flag} ", 2)[-1]
        assert after.split(" --")[0].endswith("(default: from the preset)"), flag


def test_every_training_setting_is_a_flag_generated_from_its_declaration():
    from dataclasses import fields

    from mnist_logreg.config import TrainConfig

    flags = {action.option_strings[0] for name, action in every_action() if name == "train" and action.option_strings}
    assert {"--" + each.name.replace("_", "-") for each in fields(TrainConfig)} <= flags


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--lr", "-1"], "(see 'mnist-logreg train --help')"),
        (["train", "--no-such-flag"], "unrecognized arguments: --no-such-flag (see 'mnist-logreg train --help')"),
        (["predict", "runs/x", "--top-k", "0"], "(see 'mnist-logreg predict --help')"),
        (["serve", "runs/x", "--port", "-1"], "(see 'mnist-logreg serve --help')"),
        (["nope"], "(see 'mnist-logreg --help')"),
    ],
)
def test_errors_point_to_the_help_of_the_command_given_and_share_one_prefix(args, message):
    result = cli(*args)
    assert result.returncode == 2
    assert_clean_error(result, message)
    assert result.stderr.startswith("mnist-logreg: error: ")


def test_a_setting_the_optimizer_does_not_use_is_refused():
    result = cli("train", "--momentum", "0.9")  # the default preset trains with Adam
    assert result.returncode == 2
    assert_clean_error(result, "argument --momentum: 0.9 applies only to optimizer 'sgd', and this recipe uses 'adam'")
    assert cli("train", "--preset", "notebook", "--momentum", "0.9", "--epochs", "0").stderr.count("--momentum") == 0


def test_a_run_records_only_the_settings_it_used():
    from mnist_logreg.config import TrainConfig, get_preset

    assert "momentum" not in get_preset("default").to_dict()
    assert get_preset("notebook").to_dict()["momentum"] == 0.0
    assert TrainConfig(**get_preset("default").to_dict()) == get_preset("default")  # and it reads back


@pytest.mark.parametrize(
    "args, message",
    [
        (["--index", "0", "file.png"], "give image files or --index N, not both"),
        (["--json", "--jsonl", "file.png"], "argument --jsonl: not allowed with argument --json"),
    ],
)
def test_predict_refuses_options_that_clash(tmp_path, args, message):
    result = cli("predict", tmp_path, *args)
    assert result.returncode == 2
    assert_clean_error(result, message)


def test_options_may_come_after_the_paths_and_between_them(tmp_path):
    from tests.helpers import untrained_run
    from tests.photos import seven

    run = untrained_run(tmp_path / "run")
    seven().save(tmp_path / "a.png")
    seven().save(tmp_path / "b.png")
    result = cli("predict", run, tmp_path / "a.png", "--top-k", "2", tmp_path / "b.png", "--json")
    assert result.returncode == 0, result.stderr
    answers = __import__("json").loads(result.stdout)
    assert [len(answer["top_k"]) for answer in answers] == [2, 2]


def test_export_and_compare_make_the_folders_of_their_out_path(tmp_path):
    from tests.helpers import untrained_run

    run = untrained_run(tmp_path / "run")
    for name in ("history.json", "metrics.json"):
        from mnist_logreg.model.run_folder import write_json

        value = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5, "seconds": 1.0}]
        write_json(
            run / name,
            value if name == "history.json" else {**value[0], "test_acc": 0.5, "test_loss": 1.0, "train_seconds": 1.0},
        )
    exported = cli("export", run, "--out", tmp_path / "new" / "dir" / "x.onnx")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "new" / "dir" / "x.onnx").is_file()
    compared = cli("compare", run, "--out", tmp_path / "other" / "dir" / "c.png")
    assert compared.returncode == 0, compared.stderr
    assert (tmp_path / "other" / "dir" / "c.png").is_file()


def test_export_without_its_extra_is_one_line_naming_the_install(tmp_path):
    import subprocess
    import sys

    from tests.helpers import untrained_run

    run = untrained_run(tmp_path / "run")
    hide_onnx = (
        "import sys; sys.modules['onnx'] = None; from mnist_logreg.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run([sys.executable, "-c", hide_onnx, "export", str(run)], capture_output=True, text=True)
    assert done.returncode == 1
    assert_clean_error(done, "export needs its extra: pip install 'mnist-logreg[export]' (onnx is missing)")


def test_resuming_a_missing_folder_says_the_folder_is_missing(tmp_path):
    assert_clean_error(cli("train", "--resume", tmp_path / "nope"), f"no run folder at {tmp_path / 'nope'} to resume")


def test_serving_on_a_port_in_use_fails_before_saying_it_serves(tmp_path):
    import socket

    from tests.helpers import untrained_run

    run = untrained_run(tmp_path / "run")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_process("serve", run, "--port", port, "--workers", "1")
    assert result.returncode == 1
    assert "serving" not in result.stderr
    assert_clean_error(result, f"cannot serve on 127.0.0.1:{port}: Address already in use")


def test_the_input_transform_flag_overrides_the_preset(fake_data, tmp_path):
    spec, data_dir = fake_data
    # The fake dataset is not in the table, so drive the library's train_run as the CLI does.
    on = train_preset(spec, "raw", data_dir, tmp_path / "on", epochs=1, val_size=60, input_transform="deskew")
    off = train_preset(spec, "default", data_dir, tmp_path / "off", epochs=1, val_size=60, input_transform="none")
    assert json.loads((on.run_dir / "model.json").read_text())["input_transform"] == "deskew"
    assert json.loads((off.run_dir / "model.json").read_text())["input_transform"] == "none"

    def config(*flags):
        return train_config(build_parser().parse_args(["train", *flags]))

    assert config().input_transform == "deskew"  # the default preset on MNIST
    assert config("--input-transform", "none").input_transform == "none"
    assert config("--dataset", "fashion-mnist").input_transform == "none"
    assert config("--dataset", "fashion-mnist", "--input-transform", "deskew").input_transform == "deskew"
    assert config("--preset", "raw", "--input-transform", "deskew").input_transform == "deskew"
    assert config("--preset", "notebook").input_transform == "none"


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("192.0.2.1", False),
        ("example.test", False),
    ],
)
def test_only_loopback_addresses_count_as_this_machine(host, loopback):
    assert is_loopback(host) is loopback


def test_train_says_what_it_is_doing_before_each_step_that_takes_a_while(tmp_path):
    from tests.helpers import write_shape_folder

    digits = write_shape_folder(tmp_path / "digits", per_class=12, classes=[str(d) for d in range(10)])
    result = cli(
        "train", "--dataset", digits, "--reject", "--epochs", "1", "--out", tmp_path / "run", "--data-dir", tmp_path
    )  # no Fashion-MNIST in that data folder: the drawn outliers alone
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.endswith("...")]
    assert said == [
        f"training the default preset on {digits} ...",
        f"reading 120 images of {digits} (digits layout) ...",
        "drawing 34 outliers for the class 'not a digit' ...",
        "applying the input transform 'deskew' to every image once ...",
        "drawing the figures and writing report.html ...",
    ]
    bars = result.stderr
    for bar in ("decoding:", "outliers:", "deskew:", "epoch 1/1:", "report:"):
        assert bar in bars


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a value the code did not expect"),  # a bug, though the user's mistakes are ValueErrors too
        FileNotFoundError(2, "No such file or directory", "/nonexistent/inside/the/package.json"),
        ZeroDivisionError("division by zero"),
    ],
    ids=["value-error", "os-error-of-no-given-path", "any-other"],
)
def test_an_error_the_project_did_not_expect_prints_its_traceback_and_asks_for_a_report(monkeypatch, run_dir, error):
    import mnist_logreg.cli

    def failing(args):
        raise error

    monkeypatch.setitem(mnist_logreg.cli.COMMANDS, "evaluate", failing)
    result = cli("evaluate", run_dir)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and str(error) in result.stderr
    assert "this is a bug of mnist-logreg" in result.stderr.strip().splitlines()[-1]


def test_an_os_error_on_a_path_the_user_gave_is_one_line(run_dir, tmp_path):
    (tmp_path / "a-file").write_text("in the way of the folder --out needs")
    result = cli("export", run_dir, "--format", "onnx", "--out", tmp_path / "a-file" / "model.onnx")
    assert_clean_error(result, str(tmp_path / "a-file"))
