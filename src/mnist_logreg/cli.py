"""The ``mnist-logreg`` command: parse arguments, call the library, print. Nothing else lives here.

Each command imports what it needs when it runs: torch alone takes about a second to import,
and ``--help``, argument errors and ``predict`` need none of it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from .config import DEVICES, LOADERS, MIN_STEPS_PER_EPOCH, PRESETS, RUNS_DIR, SCORED_SPLITS, TOP_K, Limits, TrainConfig
from .data.catalog import DATASETS, DEFAULT_DATA_DIR
from .errors import DataError, SettingError, UsageError, UserError
from .images.layout import FOLDER_LAYOUTS
from .torchrun import launched
from .workers import cores


def number_type(convert: Callable[[str], float], what: str, accept: Callable[[float], bool], rule: str):
    """An argparse ``type``: ``convert`` the text, then check it, naming the bad value in the error."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text} must be {rule}")
        return value

    return parse


integer = number_type(int, "an integer", lambda v: True, "")  # the rule is checked elsewhere
number = number_type(float, "a number", lambda v: True, "")
positive_int = number_type(int, "an integer", lambda v: v > 0, "a positive integer")
non_negative_int = number_type(int, "an integer", lambda v: v >= 0, "0 or more")
probability = number_type(float, "a number", lambda v: 0 <= v <= 1, "a probability, from 0 to 1")
positive_float = number_type(float, "a number", lambda v: math.isfinite(v) and v > 0, "a positive number")
port_number = number_type(int, "a port number", lambda v: 0 <= v <= 65535, "a port number (0-65535)")


PROG = "mnist-logreg"


class Parser(argparse.ArgumentParser):
    """argparse, with bad arguments reported on one line (the usage is one --help away): every
    message starts ``mnist-logreg: error:`` and points to the help of the command that was given."""

    def error(self, message: str):
        # Under torchrun every process parses the same arguments: one of them says what is wrong.
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n" if torchrun_rank() == 0 else None)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, once: not where there is none (None, a switch) or the help names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


class VersionAction(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked for."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .model.run_folder import package_version

        print(f"{PROG} {package_version()}")
        parser.exit()


def torchrun_rank() -> int:
    """This process's rank among those torchrun started (0 outside torchrun); read without importing torch."""
    return launched().rank


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Logistic regression on MNIST and Fashion-MNIST: fetch, train, evaluate, predict.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        add_fetch,
        add_train,
        add_tune,
        add_evaluate,
        add_report,
        add_compare,
        add_predict,
        add_export,
        add_read,
        add_serve,
    ):
        add_command(commands)
    parser.commands = commands.choices  # name -> the command's own parser, whose errors point to its help
    return parser


def command(commands, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by 'train' (runs/latest)")


def add_data_dir(parser: argparse.ArgumentParser, help: str = "where the datasets live") -> None:
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=help)


def add_dataset_args(parser: argparse.ArgumentParser, folders: bool = False) -> None:
    if folders:
        parser.add_argument(
            "--dataset",
            default="mnist",
            metavar="NAME|FOLDER",
            help=f"{' or '.join(sorted(DATASETS))}, or a folder of one's own images, one subfolder per class",
        )
    else:
        parser.add_argument("--dataset", default="mnist", choices=sorted(DATASETS), help="which dataset")
    add_data_dir(parser)


def add_fetch(commands) -> None:
    fetch = command(commands, "fetch", "download and verify a dataset")
    add_dataset_args(fetch)
    fetch.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="FOLDER",
        help="take the four IDX files (plain or .gz) from this folder only, instead of the usual sources",
    )


# argparse types of TrainConfig's fields; the values' rules are TrainConfig's own (see main)
FIELD_TYPES = {"int": integer, "float": number, "str": str, "bool": None}  # bool: --name / --no-name


def add_train(commands) -> None:
    train = command(
        commands,
        "train",
        "train a model and save a run folder",
        "Train logistic regression. Each setting left out takes the preset's value.",
    )
    add_dataset_args(train, folders=True)
    folder = train.add_argument_group("a folder dataset (--dataset FOLDER)")
    folder.add_argument(
        "--layout",
        choices=sorted(FOLDER_LAYOUTS),
        help="'digits' places each image as MNIST's digits are (handwriting, symbols); "
        "'resize' makes it plain grey 28×28 (pictures that fill their frame) (default: digits)",
    )
    train.add_argument(
        "--no-cache",
        action="store_true",
        help="keep nothing for the next run: decode a folder's images, draw the outliers and pen copies, "
        "and deskew the training split each time",
    )
    add_recipe_args(train)
    add_run_args(train)


def add_recipe_args(train: argparse.ArgumentParser) -> None:
    """--preset, and one flag per TrainConfig setting, from its declaration."""
    train.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="'notebook' is the lesson exactly; 'raw' the best recipe on raw pixels; "
        "'default' the most accurate recipe for the dataset",
    )
    settings = train.add_argument_group("settings (each overrides the preset's)")
    for each in fields(TrainConfig):
        kind = {"action": argparse.BooleanOptionalAction} if each.type == "bool" else {"type": FIELD_TYPES[each.type]}
        settings.add_argument(
            "--" + each.name.replace("_", "-"),
            choices=each.metadata["choices"] or None,
            help=f"{each.metadata['help']} (default: from the preset)",
            **kind,
        )


def add_run_args(train: argparse.ArgumentParser) -> None:
    """Where the run goes and how it trains: --out, --device, --loader, --resume and the like."""
    train.add_argument(
        "--out", type=Path, metavar="RUN_DIR", help="run folder to write (default: runs/<dataset>-<preset>-<time>)"
    )
    train.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    train.add_argument("--device", default="auto", choices=DEVICES, help="where to train: auto takes a GPU if any")
    train.add_argument(
        "--loader",
        default="memory",
        choices=LOADERS,
        help="in-memory tensors (fast) or the lesson's torchvision DataLoaders (same batches)",
    )
    train.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    train.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an unfinished run (stopped by Ctrl-C or killed) from its last complete epoch, with its settings",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-report", action="store_true", help="skip the figures and report.html")


def add_moved_folder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        type=Path,
        metavar="FOLDER",
        help="for a run trained on a folder of images that has moved: where the same images are now",
    )


def add_tune(commands) -> None:
    tune = command(
        commands,
        "tune",
        "teach a copy of a run one writer's hand, from a folder of their labelled images",
        "Fine-tune a copy of a run on a folder of one writer's labelled images (one subfolder per class, "
        "named as the run's classes), so that it reads that hand; the run itself is left as it is.",
    )
    add_run_dir(tune)
    tune.add_argument(
        "--dataset", type=Path, required=True, metavar="FOLDER", help="the writer's images, one subfolder per class"
    )
    tune.add_argument("--out", type=Path, help="the new run's folder (default: runs/<run>-tuned-<time>)")
    add_data_dir(tune, "where the run's dataset lives (its images are replayed and it is scored on them)")


def add_evaluate(commands) -> None:
    evaluate = command(commands, "evaluate", "accuracy and loss of a saved run")
    add_run_dir(evaluate)
    evaluate.add_argument("--split", default="test", choices=SCORED_SPLITS, help="which split to score")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    add_moved_folder(evaluate)
    add_data_dir(evaluate)


def add_report(commands) -> None:
    report = command(commands, "report", "write the figures and report.html of a run")
    add_run_dir(report)
    add_moved_folder(report)
    add_data_dir(report)


def add_compare(commands) -> None:
    compare = command(commands, "compare", "overlay the curves of several runs")
    compare.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders of one dataset")
    compare.add_argument("--out", type=Path, default=Path("compare.png"), help="figure to write")


def add_top_k(parser: argparse.ArgumentParser, per: str) -> None:
    parser.add_argument("--top-k", type=positive_int, default=TOP_K, help=f"how many classes to list per {per}")


def add_reject(parser: argparse.ArgumentParser, what: str) -> None:
    """``what``: the things judged, in the plural ("images", "parts of an image")."""
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument(
        "--reject-below",
        type=probability,
        metavar="P",
        help=f"call {what} 'not a digit' when their likeliest digit's probability is below P "
        "(default: the run's own threshold, if it has one)",
    )
    rule.add_argument("--no-reject", action="store_true", help=f"take all {what} for digits")


def add_output_format(parser: argparse.ArgumentParser) -> None:
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list, one object per input")
    output.add_argument(
        "--jsonl", action="store_true", help="print one JSON object per line, in input order, as each is ready"
    )


def add_files_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recursive", action="store_true", help="take the images in subfolders of folders too")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=cores(),
        help="processes that decode and classify files (default: the number of cores)",
    )


def add_predict(commands) -> None:
    predict = command(
        commands,
        "predict",
        "predict the class of image files or dataset images",
        "Predict image files (photos, drawings, scans; folders of them) or, with --index, a "
        "dataset image. Each file is preprocessed the MNIST way: ink made light on black, "
        "cropped, scaled into 20 px and centred by centre of mass.",
    )
    add_run_dir(predict)
    predict.add_argument("paths", type=Path, nargs="*", metavar="PATH", help="image files or folders of them")
    add_top_k(predict, "image")
    add_reject(predict, "images")
    add_output_format(predict)
    add_files_options(predict)
    predict.add_argument(
        "--save-preprocessed", type=Path, metavar="DIR", help="write the 28×28 images the model saw into DIR"
    )
    predict.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write each image's evidence maps into DIR: what each pixel added to the two likeliest classes",
    )
    predict.add_argument("--index", type=non_negative_int, help="index of a dataset image instead of files")
    predict.add_argument("--split", default="test", choices=SCORED_SPLITS, help="split for --index")
    add_data_dir(predict, "dataset folder for --index")


def add_export(commands) -> None:
    export = command(commands, "export", "write a run's model for runtimes without PyTorch (ONNX)")
    add_run_dir(export)
    export.add_argument("--format", default="onnx", choices=["onnx"], help="the file format")
    export.add_argument("--out", type=Path, metavar="PATH", help="file to write (default: RUN_DIR/model.onnx)")


def add_read(commands) -> None:
    read = command(
        commands,
        "read",
        "read the whole number written in each image",
        "Read the number written in each image file (photos, drawings; folders of them): the ink "
        "is split into digits, left to right, and each digit is read the MNIST way.",
    )
    add_run_dir(read)
    read.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="image files or folders of them")
    add_top_k(read, "digit")
    add_reject(read, "parts of an image")
    add_output_format(read)
    add_files_options(read)
    read.add_argument("--save-boxes", type=Path, metavar="DIR", help="write each image with its digits' boxes into DIR")


def add_serve(commands) -> None:
    serve = command(commands, "serve", "serve a drawing page and a JSON API for a run")
    add_run_dir(serve)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind; the demo has no authentication, so loopback by default"
    )
    serve.add_argument("--port", type=port_number, default=8000, help="port to bind")
    serve.add_argument(
        "--workers",
        type=positive_int,
        help="server processes, each with the model loaded once (default: the number of cores; one with --corrections)",
    )
    serve.add_argument(
        "--corrections",
        type=Path,
        metavar="DIR",
        help="let users correct answers: keep each correction in DIR (one folder per class) and tune on them "
        "when asked (POST /api/tune), swapping in the tuned run; off by default",
    )
    add_data_dir(serve, "where the run's dataset lives, for --corrections (its images are replayed in each tune)")
    serve.add_argument(
        "--queue", type=positive_int, default=Limits.queue, help="predictions a worker queues; past that it answers 503"
    )
    serve.add_argument(
        "--prediction-timeout",
        type=positive_float,
        default=Limits.timeout_s,
        metavar="SECONDS",
        help="a prediction running longer is answered 503",
    )
    serve.add_argument(
        "--cors", action="append", default=[], metavar="ORIGIN", help="allow browser calls from ORIGIN (repeatable)"
    )


# What a resumed run keeps as it started: every setting, and where it is written.
RUN_SETTINGS = [each.name for each in fields(TrainConfig)] + ["out"]


def flag_names(message: str) -> str:
    """TrainConfig's message in argparse's words: ``batch_size=0 must ...`` -> ``argument --batch-size: 0 must ...``."""
    name, _, rest = message.partition("=")
    return f"argument --{name.replace('_', '-')}: {rest}" if name.isidentifier() else message


def log(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_fetch(args) -> int:
    from .data.fetch import fetch, from_folder

    sources = [from_folder(args.from_dir)] if args.from_dir else None
    raw_dir = fetch(args.dataset, args.data_dir, sources=sources, log=log)
    print(f"{args.dataset}: verified files in {raw_dir}")
    return 0


def train_config(args, folder=None):
    """The TrainConfig that ``train``'s arguments ask for: the preset for the dataset (or the
    ``folder`` --dataset names), then the flags. A folder's validation split is its share of the
    training images unless --val-size says otherwise. A value TrainConfig refuses is a bad flag
    like any other: a UsageError that names the flag."""
    from .config import get_preset

    kind = f"folder-{folder.layout_name}" if folder else args.dataset
    given = {each.name: getattr(args, each.name) for each in fields(TrainConfig)}
    if folder and given["val_size"] is None:
        given["val_size"] = folder.default_val_size()
    try:
        return get_preset(args.preset, kind).updated(**given)
    except SettingError as error:
        raise UsageError(flag_names(str(error))) from None


def dataset_folder(args: argparse.Namespace):
    """The folder ``--dataset`` names, scanned (None for a dataset of the table); a UsageError where
    it is neither, or cannot be a dataset."""
    if args.dataset in DATASETS:
        if args.layout:
            raise UsageError(f"--layout is for a folder dataset; {args.dataset}'s images are placed as they are")
        return None
    from .data.folders import open_folder

    if not Path(args.dataset).exists():
        raise UsageError(f"argument --dataset: {args.dataset!r} is neither one of {sorted(DATASETS)} nor a folder")
    try:
        return open_folder(args.dataset, args.layout or "digits", cache=not args.no_cache, log=log)
    except DataError as error:
        raise UsageError(f"argument --dataset: {error}") from None


def cmd_train(args) -> int:
    folder = config = None
    if not args.resume:  # the dataset folder scanned and the recipe built, before torch: bad ones exit 2
        folder = dataset_folder(args)
        config = train_config(args, folder)
    from .train import distributed

    try:
        return train_command(args, folder, config)
    finally:
        distributed.stop()  # under torchrun: leave the process group cleanly


def train_command(args, folder, config) -> int:
    """Train (or resume) the run ``args`` ask for, on ``folder`` (None: a dataset of the table)
    with ``config`` (None when resuming), say its scores and write its report."""
    if torchrun_rank() == 0:  # before torch, whose import alone takes seconds
        what = folder.path if folder else args.dataset
        log(f"resuming {args.resume} ..." if args.resume else f"training the {args.preset} preset on {what} ...")
    import torch

    from .train import distributed
    from .train.run import TrainingInterrupted, resume_run, train_run

    if args.threads:
        torch.set_num_threads(args.threads)
    min_steps = None if args.batch_size is not None else MIN_STEPS_PER_EPOCH  # a batch asked for is kept
    workers = cores()  # processes that make the pen copies and outliers not kept yet
    try:
        if args.resume:
            result = resume_run(
                args.resume, data_dir=args.data_dir, progress=not args.no_progress, log=log, workers=workers
            )
        else:
            result = train_run(
                folder or args.dataset,
                config,
                preset=args.preset,
                data_dir=args.data_dir,
                run_dir=args.out,
                device=args.device,
                loader=args.loader,
                progress=not args.no_progress,
                log=log,
                overwrite=args.overwrite,
                cache=not args.no_cache,
                min_steps_per_epoch=min_steps,
                workers=workers,
            )
    except TrainingInterrupted as interruption:
        if distributed.current().is_main:
            print(f"{PROG}: {interruption}", file=sys.stderr)
        return 130
    if not distributed.current().is_main:
        return 0  # rank 0 speaks for the processes that trained together
    metrics = result.metrics
    print(f"test_loss: {metrics.test_loss:.4f}")
    print(f"test_acc: {metrics.test_acc:.4f}")
    print(f"train_seconds: {metrics.train_seconds:.2f}")
    print(f"saved run to {result.run_dir}" + (f" ({result.latest} points to it)" if result.latest else ""))
    if not args.no_report:
        from .report.write import write_report

        log("drawing the figures and writing report.html ...")
        print(f"report: {write_report(result.run_dir, splits=result.splits, progress=not args.no_progress)}")
    return 0


def cmd_report(args) -> int:
    from .report.write import write_report

    print(f"report: {write_report(args.run_dir, args.data_dir, moved_to=args.dataset, progress=True)}")
    return 0


def cmd_compare(args) -> int:
    from .report.write import compare_runs

    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = compare_runs(args.run_dirs, args.out)
    width = max(len(row["run"]) for row in rows)
    print(
        f"{'run':<{width}}  {'preset':<9} {'epochs':>6} {'test_acc':>8} {'test_loss':>9} {'val_acc':>8} {'train_s':>8}"
    )
    for row in rows:
        print(
            f"{row['run']:<{width}}  {row['preset']:<9} {row['epochs']:>6} {row['test_acc']:>8.4f} "
            f"{row['test_loss']:>9.4f} {row['val_acc']:>8.4f} {row['train_seconds']:>8.2f}"
        )
    print(f"curves: {args.out}")
    return 0


def cmd_tune(args) -> int:
    from .train.tune import tune_run

    result = tune_run(args.run_dir, args.dataset, out=args.out, data_dir=args.data_dir)
    before, after = result.before, result.after
    print(
        f"tuned run written to {result.run_dir} in {result.seconds:.1f} s: the writer's held-out images "
        f"{_share(before['writer']['acc'])} -> {_share(after['writer']['acc'])} right, "
        f"the test split {_share(before['test']['acc'])} -> {_share(after['test']['acc'])}"
    )
    return 0


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def cmd_evaluate(args) -> int:
    import json

    from .train.run import evaluate_run

    result = evaluate_run(args.run_dir, args.split, args.data_dir, moved_to=args.dataset)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['dataset']} {result['split']} ({result['size']} images): "
            f"accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}"
        )
    return 0


def cmd_predict(args) -> int:
    from .model.linear import load_weights, with_threshold

    # numpy: predicting files needs no torch. Read here, a bad run folder is one clear error
    # before any worker starts (each worker reads the weights for itself).
    weights, info = load_weights(args.run_dir)
    weights = with_threshold(weights, args.reject_below, args.no_reject)
    if args.index is not None:
        return print_results([predict_dataset_image(weights, info, args)], args, print_prediction_table)
    return print_results(answer_paths(args, "predict"), args, print_prediction_table)


def predict_dataset_image(weights, info, args) -> dict:
    """The prediction for image ``args.index`` of the run's ``args.split``, with its true class."""
    from .data.loaders import to_float_pixels
    from .data.splits import run_splits
    from .infer.classify import kept, predict_pixels

    splits = run_splits(info, args.data_dir)
    images, labels = splits.tensors(args.split)
    if args.index >= len(labels):
        raise SettingError(f"--index {args.index} is out of range: the {args.split} split has {len(labels)} images")
    result = predict_pixels(to_float_pixels(images[args.index]), weights, info.classes, args.top_k)
    name = f"{args.split}-{args.index:05d}.png"
    true_label = int(labels[args.index])
    make_folders(args.save_preprocessed, args.explain)
    result = kept(result, name, weights, info.classes, save_preprocessed=args.save_preprocessed, explain=args.explain)
    return {
        "path": f"{args.split}[{args.index}]",
        **result,
        "true_label": true_label,
        "true_class": info.classes[true_label],
    }


def make_folders(*folders: Path | None) -> None:
    """The output folders asked for (None: not asked), made before any file is written into them."""
    for folder in folders:
        if folder:
            folder.mkdir(parents=True, exist_ok=True)


def answer_paths(args, job: str):
    """Each file's prediction or reading, or its error, in input order, as a stream."""
    from .infer.batch import Options, answer_files, check_image_paths, expand_paths

    check_image_paths(args.paths)
    options = Options(
        job=job,
        top_k=args.top_k,
        reject=(args.reject_below, args.no_reject),
        save_preprocessed=getattr(args, "save_preprocessed", None),
        explain=getattr(args, "explain", None),
        save_boxes=getattr(args, "save_boxes", None),
    )
    make_folders(options.save_preprocessed, options.explain, options.save_boxes)
    skipped: list[Path] = []  # subfolders left out without --recursive, said at the end
    yield from answer_files(expand_paths(args.paths, args.recursive, skipped), args.run_dir, options, args.workers)
    note_skipped(skipped)


def print_results(results, args, print_table: Callable[[list[dict]], None]) -> int:
    """Print each answer (a table, a JSON list, or JSON lines as they come); a bad file gets its
    own error and the rest carry on. Returns 1 if any input failed, or there was none."""
    import json  # here, as every import beyond parsing: --help and argument errors answer at once

    kept_results, failed, count = [], [], 0
    for result in results:
        count += 1
        if "error" in result:
            failed.append(result)
        if args.jsonl:
            print(json.dumps(result), flush=True)  # one line per input, in input order, as it is ready
        else:
            kept_results.append(result)
    if args.json:
        print(json.dumps(kept_results, indent=2))  # errors are entries of the list
    elif not args.jsonl:
        print_table([r for r in kept_results if "error" not in r])
        for result in failed:
            log(f"{PROG}: error: {result['path']}: {result['error']}")
    return 1 if failed or not count else 0


def note_skipped(skipped: list[Path]) -> None:
    if skipped:
        shown = ", ".join(map(str, skipped[:3])) + (", ..." if len(skipped) > 3 else "")
        log(f"{PROG}: note: {len(skipped)} subfolder(s) not read ({shown}); --recursive reads them too")


def print_prediction_table(good: list[dict]) -> None:
    if not good:
        return
    if "true_class" in good[0]:  # a dataset image, the lesson's way
        for r in good:
            top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top_k"])
            said = f"{r['path']}: predicted {r['class']} (p={r['probability']:.3f}), true label {r['true_class']}"
            print(f"{said}; top {len(r['top_k'])}: {top}")
        return
    from .infer.classify import shown_class

    width = max(len(r["path"]) for r in good)
    k = len(good[0]["top_k"])
    print(f"{'path':<{width}}  {'class':<12} {'prob':>6}  top {k}")
    for r in good:
        top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top_k"])
        print(f"{r['path']:<{width}}  {shown_class(r):<12} {r['probability']:>6.3f}  {top}")
    unsure = sum(r["state"] == "unsure" for r in good)
    rejected = sum(r["state"] == "rejected" for r in good)
    if unsure:
        print(f"{unsure} of {len(good)} unsure between two classes (their prob: the two's together)")
    if rejected:
        print(
            f"{rejected} of {len(good)} not taken for a digit "
            "(their prob: 1 minus the likeliest digit's; 1 for an image with no ink)"
        )


def print_reading_table(good: list[dict]) -> None:
    if not good:
        return
    width = max(len(r["path"]) for r in good)
    print(f"{'path':<{width}}  {'number':<10} {'prob':>6}  not digits")
    for r in good:
        left_out = sum(d["state"] == "rejected" for d in r["digits"])
        said = r.get("reason") or left_out or ""  # an image without digits says why
        print(f"{r['path']:<{width}}  {r['text'] or '-':<10} {r['probability']:>6.3f}  {said}")
    unsure = sum(d["state"] == "unsure" for r in good for d in r["digits"])
    if unsure:
        print(f"? marks a digit read unsure ({unsure} in all): the digit is one of two, and the prob leaves it out")


def cmd_read(args) -> int:
    from .infer.number import check_reads_digits
    from .model.linear import load_weights

    check_reads_digits(load_weights(args.run_dir)[1])  # one clear error before any worker starts
    return print_results(answer_paths(args, "read"), args, print_reading_table)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def extra_needed(extra: str, what: str):
    """A missing optional dependency, said in one line that names the install."""
    try:
        yield
    except ImportError as error:
        raise UserError(
            f"{what} needs its extra: pip install 'mnist-logreg[{extra}]' ({error.name} is missing)"
        ) from None


def cmd_export(args) -> int:
    with extra_needed("export", "export"):
        import onnx  # noqa: F401  (torch's exporter needs it, and imports it only halfway through)

        from .model.export import export_onnx
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {export_onnx(args.run_dir, args.out)}")
    return 0


def check_port_free(host: str, port: int) -> None:
    """Refuse, before saying 'serving', an address that cannot be bound (a port in use, a foreign host)."""
    import socket

    try:
        with socket.create_server((host, port)) as probe:  # SO_REUSEADDR, as uvicorn binds
            probe.close()
    except OSError as error:
        raise SettingError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None


def check_corrections(folder: Path, info, workers: int) -> None:
    """Refuse, in one line, what ``serve --corrections`` cannot do."""
    from .train.tune import tunable_layout

    if workers > 1:
        raise UsageError(
            "--corrections serves with one worker: the model it tunes is swapped in that one process; "
            "leave out --workers"
        )
    if folder.exists() and not folder.is_dir():
        raise SettingError(f"--corrections {folder} is a file; give a folder (it is made if missing)")
    tunable_layout(info)


def cmd_serve(args) -> int:
    with extra_needed("web", "the web demo"):
        import uvicorn

        from .web.app import SERVE_VARIABLE, serve_settings
    from .model.linear import load_weights

    _, info = load_weights(args.run_dir)  # a bad run folder is one clear error here, not one per worker
    workers = args.workers or (1 if args.corrections else cores())
    if args.corrections is not None:
        check_corrections(args.corrections, info, workers)
    limits = Limits(queue=args.queue, timeout_s=args.prediction_timeout, cors=tuple(args.cors))
    os.environ[SERVE_VARIABLE] = serve_settings(args.run_dir, limits, args.corrections, args.data_dir)
    if not is_loopback(args.host):
        log(
            f"{PROG}: warning: serving on {args.host}, beyond this machine: the demo has no authentication, "
            "so anyone who can reach this address can use it"
        )
    check_port_free(args.host, args.port)
    log(f"serving {args.run_dir} on http://{args.host}:{args.port}/ with {workers} worker(s) (Ctrl-C to stop)")
    if args.corrections is not None:
        log(f"keeping corrections in {args.corrections}, and the runs tuned on them in {args.corrections}/.runs")
    uvicorn.run(
        "mnist_logreg.web.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        log_level="warning",
    )
    return 0


COMMANDS = {
    "fetch": cmd_fetch,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "export": cmd_export,
    "tune": cmd_tune,
    "read": cmd_read,
    "report": cmd_report,
    "compare": cmd_compare,
    "serve": cmd_serve,
}


# Commands whose paths may come before and after their options: `predict RUN --top-k 5 a.png b.png`.
INTERMIXED = ("predict", "read")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The arguments, checked: bad values and combinations end in ``parser.error`` (one line, exit 2)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    name = parser.parse_known_args(argv)[0].command
    command = parser.commands[name]
    if name in INTERMIXED:  # argparse alone stops taking paths at the first option
        args = command.parse_intermixed_args(argv[argv.index(name) + 1 :], argparse.Namespace(command=name))
    else:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            command.error(f"unrecognized arguments: {' '.join(unknown)}")
    check_combinations(command, args)
    return args


def check_combinations(command: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse can tell from the flags alone but not from any one of them: flags that clash.
    What needs a look at the machine or the disk (a dataset folder, the recipe) waits for the command."""
    if args.command == "predict":
        if args.index is not None and args.paths:
            command.error("give image files or --index N, not both")
        if args.index is None and not args.paths:
            command.error("give image files or folders to predict, or --index N for a dataset image")
    if args.command == "train":
        given = ["--" + name.replace("_", "-") for name in RUN_SETTINGS if getattr(args, name) is not None]
        if args.resume and given:
            command.error(f"--resume continues a run with the settings it started with; drop {', '.join(given)}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:  # settings that clash, found only once the command ran: as argparse answers
        parser.commands[args.command].error(str(error))
    except BrokenPipeError:
        return stop_quietly_on_closed_pipe()
    except UserError as error:
        return say_error(error)
    except OSError as error:
        return say_error(error) if about_the_users_files(error, args) else report_bug()
    except KeyboardInterrupt as interruption:
        print(f"{PROG}: {str(interruption) or 'interrupted'}", file=sys.stderr)
        return 130
    except Exception:
        return report_bug()


def say_error(error: Exception) -> int:
    """One line on stderr for what the user can fix; exit status 1."""
    rank = torchrun_rank()  # a process of several, each of which may fail in its own way, says which it is
    print(f"{PROG}{f' (rank {rank})' if rank else ''}: error: {error}", file=sys.stderr)
    return 1


# OS errors of the machine rather than of a path: a full or read-only disk, a quota.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def about_the_users_files(error: OSError, args: argparse.Namespace) -> bool:
    """Whether an OS error is the user's to fix: the disk is full, or the path it names is on the
    way to or inside a path the command was given (a file in the way of --out's folder, a
    read-only run folder), or the data and runs folders it uses by default."""
    if error.errno in MACHINE_ERRNOS:
        return True
    given = [DEFAULT_DATA_DIR, RUNS_DIR]
    for value in vars(args).values():
        given += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str | os.PathLike)]
    named = [Path(os.path.abspath(name)) for name in (error.filename, error.filename2) if name is not None]
    places = [Path(os.path.abspath(path)) for path in given]
    return any(path == place or place in path.parents or path in place.parents for path in named for place in places)


def report_bug() -> int:
    """An error the project did not expect: its traceback, and a line asking to report it; exit status 1."""
    import traceback

    from .model.run_folder import package_version

    traceback.print_exc()
    print(
        f"{PROG}: error: this is a bug of mnist-logreg {package_version()}: please report it with the traceback above",
        file=sys.stderr,
    )
    return 1


def stop_quietly_on_closed_pipe() -> int:
    """The reader of our output has gone (``predict ... | head -2``): stop without a word, as Python's
    documentation advises. What is still buffered for stdout goes nowhere, so that the interpreter's
    own flush at exit cannot fail again and print a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


if __name__ == "__main__":
    sys.exit(main())
