"""Side-by-side benchmark, interleaved: the lesson's pipeline and the presets, scikit-learn, start-up.

    make bench            # or, from the repository root: .venv/bin/python -m bench.benchmark [--rounds 3] [--lesson-epochs 3]

A shared machine's speed drifts while a benchmark runs, and the lesson's per-image Python
pipeline drifts far more than the vectorised engine: contenders measured one after the other
would compare the machine's moods. So each round runs every contender once, in turn (lesson,
notebook, scikit-learn, raw, default), each in a child process of its own (its peak memory
is its own), and the results give each contender's best and median over the rounds, the
ratio of the bests, and the range of the per-round ratios. The notebook child also times the
compute floor: the same number of (10×784)·(784×B) and (10×B)·(B×784) products as one epoch's
forward and backward passes, on the same threads. Start-up is timed as whole processes.

Results go to bench/results.json, the "training" section of bench/RESULTS.md, the speed paragraph
of docs/speed.md and the README's presets table (between their bench markers), so that no figure
there is typed by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sections import update_docs, update_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = REPO / "data"
SEED = 42

NOTEBOOK_TARGET, NOTEBOOK_AIM = 30, 50  # notebook s/epoch vs the lesson's pipeline
RAW_TARGET, RAW_AIM = 20, 40  # raw-pixel train_seconds vs scikit-learn's fit
MAX_VAL_ACC_GAP = 0.005  # notebook vs lesson, every epoch, same seed
CONTENDERS = ("lesson", "notebook", "sklearn", "raw", "default")  # the order within each round

# ---------------------------------------------------------------------------------------------
# Children: each measures one contender once and prints one JSON object on its last line.
# ---------------------------------------------------------------------------------------------


def child_lesson(args) -> dict:
    from bench import lesson

    history, test_acc = lesson.run(str(DATA_DIR), args.lesson_epochs, SEED)
    seconds = [h["seconds"] for h in history]
    return {
        "seconds_per_epoch": statistics.median(seconds),
        "val_acc": [h["val_acc"] for h in history],
        "test_acc": test_acc,
        "epochs": len(history),
    }


def _our_fit(preset: str, dataset: str = "mnist") -> dict:
    import torch

    from mnist_logreg import MNISTModel, evaluate
    from mnist_logreg.config import get_preset
    from mnist_logreg.data.loaders import tensor_loaders
    from mnist_logreg.data.splits import load_splits
    from mnist_logreg.images.inputs import feature_count
    from mnist_logreg.train.loop import fit_config
    from mnist_logreg.train.run import with_extras

    config = get_preset(preset, dataset)
    splits = load_splits(dataset, DATA_DIR, val_size=config.val_size, seed=config.seed)
    splits = with_extras(splits, config, DATA_DIR)[0]  # pen copies and outliers, as the pipeline adds them
    start = time.perf_counter()
    train, val, test = tensor_loaders(splits, config.batch_size, config.seed, config.input_transform)
    prepare = time.perf_counter() - start  # the input transform of all 70,000 images, if any
    torch.manual_seed(config.seed)
    model = MNISTModel(features=config.features, reject=config.reject)
    history = fit_config(config, model, train, val, verbose=False)
    train_seconds = sum(h["seconds"] for h in history)
    return {
        "seconds_per_epoch": statistics.median(h["seconds"] for h in history),
        "train_seconds": train_seconds,
        "prepare_seconds": prepare,
        "val_acc": [h["val_acc"] for h in history],
        "test_acc": evaluate(model, test)["val_acc"],
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "steps_per_epoch": len(train),
        "features": feature_count(config.features),
        "threads": torch.get_num_threads(),
    }


def compute_floor(batch_size: int, steps: int, features: int = 784, repeats: int = 5) -> float:
    """Seconds for one epoch's matrix products alone: per step, (10, F)·(F, B) forward and
    (10, B)·(B, F) backward, into preallocated outputs (F = 784 pixels, or 10,192 with pixel
    pairs). Best of ``repeats``."""
    import torch

    weight, x = torch.randn(10, features), torch.rand(batch_size, features)
    logits, grad = torch.empty(10, batch_size), torch.empty(10, features)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            torch.mm(weight, x.t(), out=logits)
            torch.mm(logits, x, out=grad)
        best = min(best, time.perf_counter() - start)
    return best


def child_notebook(args) -> dict:
    result = _our_fit("notebook")
    result["floor_seconds_per_epoch"] = compute_floor(result["batch_size"], result["steps_per_epoch"])
    return result


def child_raw(args) -> dict:
    return _our_fit("raw")


def child_default(args) -> dict:
    result = _our_fit("default")  # pixel pairs: its floor is that of its own, wider products
    result["floor_seconds_per_epoch"] = compute_floor(
        result["batch_size"], result["steps_per_epoch"], result["features"]
    )
    return result


def child_preset(args) -> dict:
    """One preset on one dataset, once: its test accuracy for the README's presets table."""
    return _our_fit(args.preset, args.dataset)


def child_sklearn(args) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mnist_logreg.data.idx import read_idx

    raw = DATA_DIR / "MNIST" / "raw"
    x_train = read_idx(raw / "train-images-idx3-ubyte").reshape(60000, -1) / 255.0
    y_train = read_idx(raw / "train-labels-idx1-ubyte")
    x_test = read_idx(raw / "t10k-images-idx3-ubyte").reshape(10000, -1) / 255.0
    y_test = read_idx(raw / "t10k-labels-idx1-ubyte")
    model = LogisticRegression()
    start = time.perf_counter()
    model.fit(x_train, y_train)
    return {
        "fit_seconds": time.perf_counter() - start,
        "test_acc": float(np.mean(model.predict(x_test) == y_test)),
        "iterations": int(np.max(model.n_iter_)),
    }


CHILDREN = {
    "lesson": child_lesson,
    "notebook": child_notebook,
    "sklearn": child_sklearn,
    "raw": child_raw,
    "default": child_default,
    "preset": child_preset,
}
SPEED = {  # the figure each contender is ranked by
    "lesson": "seconds_per_epoch",
    "notebook": "seconds_per_epoch",
    "sklearn": "fit_seconds",
    "raw": "train_seconds",
    "default": "train_seconds",
}


# ---------------------------------------------------------------------------------------------
# The parent
# ---------------------------------------------------------------------------------------------


def run_child(command: list[str], expect: tuple[int, ...] = (0,)) -> tuple[str, float, float]:
    """Run a command; return (stdout, wall seconds, peak RSS in MiB) of that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in expect:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}")
    return stdout, wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def measure(name: str, args, *options: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.benchmark",
        "--child",
        name,
        "--lesson-epochs",
        str(args.lesson_epochs),
        *options,
    ]
    stdout, _, peak = run_child(command)
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = peak
    return result


STARTUP_COMMANDS = ("python", "help", "bad_flag", "train", "train_no_report", "train_pairs", "report", "predict")
QUICK_COMMANDS, QUICK_TRIES = ("python", "help", "bad_flag"), 10


def startup(rounds: int) -> dict:
    """Whole processes: --help, an argument error, predict on one image, train; and a serve worker's memory."""
    cli = str(Path(sys.executable).parent / "mnist-logreg")
    times: dict[str, list[float]] = {name: [] for name in STARTUP_COMMANDS}
    peaks: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        image = Path(tmp) / "seven.png"
        from tests.photos import seven

        seven().save(image)
        train = [cli, "train", "--data-dir", str(DATA_DIR), "--no-progress", "--overwrite"]
        commands = {
            "python": [sys.executable, "-c", "pass"],  # the floor: a bare interpreter of the same Python
            "help": [cli, "--help"],
            "bad_flag": [cli, "train", "--momentum", "1.5"],
            "train": [*train, "--out", str(run)],
            "train_no_report": [*train, "--out", str(Path(tmp) / "bare"), "--no-report"],
            # The pixel-pair recipe on the 50,000 digits alone: no outliers, no pen copies.
            "train_pairs": [*train, "--out", str(Path(tmp) / "pairs"), "--no-report", "--no-reject", "--no-pens"],
            "report": [cli, "report", str(Path(tmp) / "bare")],
            "predict": [cli, "predict", str(run), str(image)],
        }
        for _ in range(rounds):
            for name in STARTUP_COMMANDS:  # in this order: predict and report read the runs trained before them
                # Tens of milliseconds, which the machine's noise easily doubles: several tries per round.
                for _ in range(QUICK_TRIES if name in QUICK_COMMANDS else 1):
                    _, wall, peak = run_child(commands[name], expect=(2,) if name == "bad_flag" else (0,))
                    times[name].append(wall)
                    peaks[name] = max(peaks.get(name, 0.0), peak)
        worker_rss = serve_worker_rss(cli, run)
    return {
        name: {"best": min(walls), "median": statistics.median(walls), "all": walls, "peak_rss_mib": peaks[name]}
        for name, walls in times.items()
    } | {"serve_worker_rss_mib": worker_rss}


def preparing(rounds: int) -> dict:
    """Seconds to make the default run's outliers and pen copies: read from the data folder's cache,
    and made anew (``cache=False``) over the cores, as `train` makes them, each round."""
    from dataclasses import replace

    import torch  # noqa: F401  (imported before the clock starts, as training has it)

    from mnist_logreg.config import get_preset
    from mnist_logreg.data.prepared import Making
    from mnist_logreg.data.splits import load_splits
    from mnist_logreg.train.run import with_extras
    from mnist_logreg.workers import cores

    config = get_preset("default")
    splits = load_splits("mnist", DATA_DIR, val_size=config.val_size, seed=config.seed)
    as_train_makes_them = Making(log=lambda message: None, workers=cores())  # quietly, over the cores
    with_extras(splits, config, DATA_DIR, as_train_makes_them)  # made and kept once, if they were not
    times: dict[str, list[float]] = {"cached": [], "uncached": []}
    for _ in range(rounds):
        for name, cache in (("cached", True), ("uncached", False)):
            start = time.perf_counter()
            with_extras(splits, config, DATA_DIR, replace(as_train_makes_them, cache=cache))
            times[name].append(time.perf_counter() - start)
    return {
        name: {"best": min(walls), "median": statistics.median(walls), "all": walls} for name, walls in times.items()
    }


def serve_worker_rss(cli: str, run: Path) -> float | None:
    """Resident memory of one `serve` worker process after it has answered a prediction."""
    import urllib.request

    from tests.servers import free_port, running

    port = free_port()
    command = [cli, "serve", str(run), "--port", str(port), "--workers", "1"]
    with running(command, f"http://127.0.0.1:{port}/api/health") as process:
        image = (run.parent / "seven.png").read_bytes()
        body = json.dumps({"image": __import__("base64").b64encode(image).decode()}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/predict", data=body, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=30).close()
        status = Path(f"/proc/{process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def machine() -> dict:
    import torch

    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def best_and_median(runs: list[dict], key: str) -> dict:
    values = [run[key] for run in runs]
    return {"best": min(values), "median": statistics.median(values), "all": values}


def summarise(rounds: dict[str, list[dict]]) -> dict:
    speed = {name: best_and_median(runs, SPEED[name]) for name, runs in rounds.items()}

    def ratio(slow: str, fast: str) -> dict:
        per_round = [s[SPEED[slow]] / f[SPEED[fast]] for s, f in zip(rounds[slow], rounds[fast], strict=True)]
        return {"of_bests": speed[slow]["best"] / speed[fast]["best"], "min": min(per_round), "max": max(per_round)}

    lesson, notebook = rounds["lesson"][-1], rounds["notebook"][-1]
    epochs = min(len(lesson["val_acc"]), len(notebook["val_acc"]))
    floor = best_and_median(rounds["notebook"], "floor_seconds_per_epoch")
    return {
        "speed": speed,
        "notebook_vs_lesson": ratio("lesson", "notebook"),
        "raw_vs_sklearn": ratio("sklearn", "raw"),
        "floor_seconds_per_epoch": floor,
        "pairs_epoch": best_and_median(rounds["default"], "seconds_per_epoch"),
        "pairs_floor": best_and_median(rounds["default"], "floor_seconds_per_epoch"),
        "notebook_vs_floor": speed["notebook"]["best"] / floor["best"],
        "pairs_vs_floor": min(r["seconds_per_epoch"] for r in rounds["default"])
        / min(r["floor_seconds_per_epoch"] for r in rounds["default"]),
        "notebook_max_val_acc_gap": max(
            abs(a - b) for a, b in zip(lesson["val_acc"][:epochs], notebook["val_acc"][:epochs], strict=True)
        ),
        "test_acc": {name: rounds[name][-1]["test_acc"] for name in rounds},
        "peak_rss_mib": {name: max(run["peak_rss_mib"] for run in runs) for name, runs in rounds.items()},
        "prepare_seconds": best_and_median(rounds["default"], "prepare_seconds"),
    }


def markdown(report: dict) -> str:
    s, m, up = report["summary"], report["machine"], report["startup"]
    sp = s["speed"]

    def bm(name: str, digits: int = 3) -> str:
        return f"{sp[name]['best']:.{digits}f} / {sp[name]['median']:.{digits}f}"

    rows = [
        ("lesson pipeline (DataLoader + autograd)", "s / epoch", bm("lesson"), f"{s['test_acc']['lesson']:.4f} after {report['lesson_epochs']} epochs", "lesson"),
        ("`notebook` preset", "s / epoch", bm("notebook"), f"{s['test_acc']['notebook']:.4f} after 20 epochs", "notebook"),
        ("scikit-learn `LogisticRegression()`", "fit s", bm("sklearn", 2), f"{s['test_acc']['sklearn']:.4f}", "sklearn"),
        ("`raw` preset", "train_seconds", bm("raw"), f"{s['test_acc']['raw']:.4f}", "raw"),
        ("`default` preset (deskewed pixel pairs)", "train_seconds", bm("default"), f"{s['test_acc']['default']:.4f}", "default"),
    ]  # fmt: skip
    nb, rs = s["notebook_vs_lesson"], s["raw_vs_sklearn"]
    floor = s["floor_seconds_per_epoch"]
    lines = [
        "## Training: the lesson's pipeline, the presets, scikit-learn",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}, torch {m['torch']} with "
        f"{m['torch_threads']} threads. Run {report['date']} with `make bench`: {report['rounds']} rounds, each "
        "running every contender once in turn, each in its own process (the lesson's pipeline for "
        f"{report['lesson_epochs']} epochs).",
        "",
        "| contender | measure | best / median (s) | test accuracy | peak RSS (MiB) |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} | {s['peak_rss_mib'][k]:.0f} |" for a, b, c, d, k in rows],
        f"| compute floor: one epoch's matrix products alone, batch 128 | s / epoch | "
        f"{floor['best']:.3f} / {floor['median']:.3f} | — | — |",
        f"| `default` preset's epoch (pixel pairs, validation included) | s / epoch | "
        f"{s['pairs_epoch']['best']:.3f} / {s['pairs_epoch']['median']:.3f} | — | — |",
        f"| compute floor of the pairs: (10 × 10,192)·(10,192 × 512) and back, per step | s / epoch | "
        f"{s['pairs_floor']['best']:.3f} / {s['pairs_floor']['median']:.3f} | — | — |",
        "",
        "| headline | measured | target (aim) |",
        "| --- | --- | --- |",
        f"| `notebook` speed-up per epoch over the lesson's pipeline | {nb['of_bests']:.1f}× (ratio of bests; "
        f"rounds {nb['min']:.1f}–{nb['max']:.1f}×) | ≥ {NOTEBOOK_TARGET}× ({NOTEBOOK_AIM}×) |",
        f"| `notebook` epoch against the compute floor | {s['notebook_vs_floor']:.2f}× the floor | |",
        f"| `raw` train_seconds vs scikit-learn fit (both raw pixels) | {rs['of_bests']:.1f}× (rounds "
        f"{rs['min']:.1f}–{rs['max']:.1f}×) | ≥ {RAW_TARGET}× ({RAW_AIM}×) |",
        f"| `default` (pixel pairs) epoch against its compute floor, bests | {s['pairs_vs_floor']:.2f}× (+ "
        f"{s['prepare_seconds']['median']:.2f} s deskewing 70,000 images once) | ≤ 2× |",
        f"| largest val_acc gap, notebook vs lesson, same seed | {s['notebook_max_val_acc_gap']:.4f} | ≤ {MAX_VAL_ACC_GAP} |",
        "",
        "Start-up, whole processes (best / median of the rounds):",
        "",
        "| command | seconds | peak RSS (MiB) | target |",
        "| --- | --- | --- | --- |",
        f"| `python -c pass` (the floor) | {up['python']['best']:.3f} / {up['python']['median']:.3f} | {up['python']['peak_rss_mib']:.0f} | |",
        f"| `mnist-logreg --help` | {up['help']['best']:.3f} / {up['help']['median']:.3f} | {up['help']['peak_rss_mib']:.0f} | ≤ 5× the floor ({startup_ratio(up, 'help'):.1f}×, best of each) |",
        f"| `mnist-logreg train --momentum 1.5` (an argument error) | {up['bad_flag']['best']:.3f} / {up['bad_flag']['median']:.3f} | {up['bad_flag']['peak_rss_mib']:.0f} | ≤ 5× the floor ({startup_ratio(up, 'bad_flag'):.1f}×) |",
        f"| `mnist-logreg predict RUN one.png` | {up['predict']['best']:.2f} / {up['predict']['median']:.2f} | {up['predict']['peak_rss_mib']:.0f} | < 1.2 s |",
        f"| `mnist-logreg train` (default, report included) | {up['train']['best']:.2f} / {up['train']['median']:.2f} | {up['train']['peak_rss_mib']:.0f} | < 20 s, < 1536 MiB |",
        f"| `mnist-logreg train --no-report` | {up['train_no_report']['best']:.2f} / {up['train_no_report']['median']:.2f} | {up['train_no_report']['peak_rss_mib']:.0f} | ≤ 1.5× the pixel-pair recipe alone ({default_share(up):.2f}×, medians) |",
        f"| `mnist-logreg train --no-report --no-reject --no-pens` (the pixel-pair recipe on the digits alone) | {up['train_pairs']['best']:.2f} / {up['train_pairs']['median']:.2f} | {up['train_pairs']['peak_rss_mib']:.0f} | |",
        f"| `mnist-logreg report RUN` (a default run) | {up['report']['best']:.2f} / {up['report']['median']:.2f} | {up['report']['peak_rss_mib']:.0f} | ≤ half of `train --no-report` ({report_share(up):.2f}×, medians) |",
        f"| one `serve` worker after a prediction (RSS) | — | {up['serve_worker_rss_mib'] or float('nan'):.0f} | < 300 MB |",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def default_share(up: dict) -> float:
    """A whole default `train` against the pixel-pair recipe on the digits alone, medians."""
    return up["train_no_report"]["median"] / up["train_pairs"]["median"]


def preparing_table(prepared: dict) -> str:
    rows = [f"| {name} | {times['best']:.2f} / {times['median']:.2f} | {target} |" for name, times, target in (
        ("read from `data/outliers/` and `data/pens/`", prepared["cached"], "≤ 1 s"),
        ("made anew (`--no-cache`)", prepared["uncached"], "≤ 5 s"),
    )]  # fmt: skip
    return "\n".join(
        [
            "The default run's outliers and pen copies (best / median of the rounds, seconds):",
            "",
            "| made | seconds | target |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )


def report_share(up: dict) -> float:
    """A report's whole process against a whole `train --no-report`, medians."""
    return up["report"]["median"] / up["train_no_report"]["median"]


def startup_ratio(up: dict, name: str) -> float:
    """A command's start-up against a bare interpreter's, best against best: the noise is all above."""
    return up[name]["best"] / up["python"]["best"]


PRESET_LADDER = ("notebook", "raw", "deskewed", "default")
PRESET_DATASETS = ("mnist", "fashion-mnist")
RECIPES = {  # what each rung adds, for the table; the numbers beside them are measured
    "notebook": "the lesson: SGD, lr 0.001, batch 128, 20 epochs, pixels in [0, 1]",
    "raw": "Adam, lr 0.02 with cosine decay, batch 512, 6 epochs, pixels in [0, 1]",
    "deskewed": "`raw` on deskewed digits, with an L2 penalty of 1e-4 (it keeps the weight images readable)",
    "default": "the most accurate for the dataset: `deskewed` with pixel pairs (10,192 inputs), 8 epochs, and on "
    'MNIST the class "not a digit" and the digits redrawn with other pens, each epoch the 50,000 digits '
    "and a fresh sample of the outliers and the pen copies; on Fashion-MNIST without deskewing, the penalty, that class or the pens",
}


def presets_table(report: dict) -> str:
    """The README's presets table: each preset's recipe and its test accuracy on both datasets."""
    presets = report["presets"]
    lines = [
        f"Measured by `make bench` ({report['date'][:10]}), once per preset and dataset:",
        "",
        "| preset | recipe | MNIST test acc | Fashion-MNIST test acc | train_seconds (MNIST) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for preset in PRESET_LADDER:
        mnist, fashion = presets[f"{preset}/mnist"], presets[f"{preset}/fashion-mnist"]
        lines.append(
            f"| `{preset}` | {RECIPES[preset]} | {mnist['test_acc']:.4f} | {fashion['test_acc']:.4f} | "
            f"{mnist['train_seconds']:.2f} |"
        )
    return "\n".join(lines)


def docs_paragraph(report: dict) -> str:
    s, up, pr = report["summary"], report["startup"], report["preparing"]
    sp, nb, rs = s["speed"], s["notebook_vs_lesson"], s["raw_vs_sklearn"]
    return (
        f"The last `make bench` ({report['date'][:10]}, {report['machine']['cores']} cores, {report['rounds']} "
        f"interleaved rounds) measured: the `notebook` preset ran an epoch {nb['min']:.0f}–{nb['max']:.0f}× faster "
        f"than the lesson's pipeline ({sp['notebook']['best']:.3f} s against {sp['lesson']['best']:.2f} s at best), "
        f"{s['notebook_vs_floor']:.1f}× the compute floor of its matrix products alone; the `raw` preset trained "
        f"to a better test accuracy than scikit-learn ({s['test_acc']['raw']:.4f} against "
        f"{s['test_acc']['sklearn']:.4f}) {rs['min']:.0f}–{rs['max']:.0f}× faster ({sp['raw']['best']:.2f} s against "
        f"{sp['sklearn']['best']:.1f} s at best). `mnist-logreg --help` took {up['help']['best']:.3f} s at best, "
        f"{startup_ratio(up, 'help'):.1f}× a bare `python -c pass` ({up['python']['best']:.3f} s); "
        f"`predict` on one image {up['predict']['median']:.2f} s, a whole `train` {up['train']['median']:.1f} s "
        f"({default_share(up):.2f}× the pixel-pair recipe on the digits alone, without its report; peak RSS "
        f"{up['train']['peak_rss_mib']:.0f} MiB), "
        f"and `report` on a run {up['report']['median']:.1f} s against {up['train_no_report']['median']:.1f} s for "
        "`train --no-report` (medians). Its outliers and pen copies took "
        f"{pr['cached']['median']:.2f} s read from the data folder's cache and {pr['uncached']['median']:.1f} s made "
        "anew (`--no-cache`; medians)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every contender once")
    parser.add_argument("--lesson-epochs", type=int, default=3, help="epochs of the lesson's (slow) pipeline")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)  # of the "preset" child
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return
    if args.rounds < 3:
        parser.error("--rounds must be at least 3: a best and a median need several rounds")

    rounds: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    for number in range(args.rounds):
        for name in CONTENDERS:
            print(f"[bench] round {number + 1}/{args.rounds}: {name} ...", file=sys.stderr, flush=True)
            rounds[name].append(measure(name, args))
    presets = {}
    for dataset in PRESET_DATASETS:  # each preset's test accuracy, measured once
        for preset in PRESET_LADDER:
            print(f"[bench] preset {preset} on {dataset} ...", file=sys.stderr, flush=True)
            presets[f"{preset}/{dataset}"] = measure("preset", args, "--preset", preset, "--dataset", dataset)
    print("[bench] start-up ...", file=sys.stderr, flush=True)
    measured_startup = startup(args.rounds)  # before this process imports torch: a child's peak RSS
    print("[bench] outliers and pen copies, cached and not ...", file=sys.stderr, flush=True)
    prepared = preparing(args.rounds)
    report = {  # counts what it shares with its parent until it execs
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "rounds": args.rounds,
        "lesson_epochs": args.lesson_epochs,
        "machine": machine(),
        "startup": measured_startup,
        "results": rounds,
        "presets": presets,
        "preparing": prepared,
    }
    report["summary"] = summarise(rounds)
    (HERE / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report) + "\n" + preparing_table(prepared)
    update_section("training", text)
    update_docs("speed", docs_paragraph(report))
    update_docs("presets", presets_table(report))
    print(text)


if __name__ == "__main__":
    main()
