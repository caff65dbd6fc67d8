"""Side-by-side benchmark: the lesson's pipeline, the notebook and default presets, scikit-learn.

    make bench            # or: .venv/bin/python bench/benchmark.py [--repeats 5] [--lesson-epochs 3]

Each pipeline runs in a child process of this one, one after another on the same machine with
the same torch threads, so that its peak memory (the child's max RSS) is its own. Timings are
medians over repeats inside each child. Results go to bench/results.json and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sections import update_section  # noqa: E402  (bench/ is not a package)

REPO = HERE.parent
DATA_DIR = REPO / "data"
SEED = 42

NOTEBOOK_TARGET, NOTEBOOK_AIM = 30, 50  # notebook s/epoch vs the lesson's pipeline
DEFAULT_TARGET, DEFAULT_AIM = 20, 40  # raw-pixel train_seconds vs scikit-learn's fit
MAX_VAL_ACC_GAP = 0.005  # notebook vs lesson, every epoch, same seed


# ---------------------------------------------------------------------------------------------
# Children: each measures one pipeline and prints one JSON object on its last line.
# ---------------------------------------------------------------------------------------------


def child_lesson(args) -> dict:
    sys.path.insert(0, str(HERE))
    import lesson

    start = time.perf_counter()
    history, test_acc = lesson.run(str(DATA_DIR), args.lesson_epochs, SEED)
    total = time.perf_counter() - start
    seconds = [h["seconds"] for h in history]
    return {
        "seconds_per_epoch": statistics.median(seconds),
        "epoch_seconds": seconds,
        "val_acc": [h["val_acc"] for h in history],
        "test_acc": test_acc,
        "epochs": len(history),
        "total_seconds": total,
    }


def _our_fit(preset: str, repeats: int) -> dict:
    import torch

    from mnist_logreg import MNISTModel, evaluate
    from mnist_logreg.data import load_splits, tensor_loaders
    from mnist_logreg.training import fit_config, get_preset

    config = get_preset(preset, "mnist")
    splits = load_splits("mnist", DATA_DIR, val_size=config.val_size, seed=config.seed)
    runs, prepare = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        train, val, test = tensor_loaders(splits, config.batch_size, config.seed, config.input_transform)
        prepare.append(time.perf_counter() - start)  # the input transform of all 70,000 images, if any
        torch.manual_seed(config.seed)
        model = MNISTModel()
        history = fit_config(config, model, train, val, verbose=False)
        runs.append((history, evaluate(model, test)["val_acc"]))
    history, test_acc = runs[-1]
    train_seconds = [sum(h["seconds"] for h in run) for run, _ in runs]
    return {
        "seconds_per_epoch": statistics.median(t / config.epochs for t in train_seconds),
        "train_seconds": statistics.median(train_seconds),
        "train_seconds_all": train_seconds,
        "val_acc": [h["val_acc"] for h in history],
        "test_acc": test_acc,
        "epochs": config.epochs,
        "threads": torch.get_num_threads(),
        "input_transform": config.input_transform,
        "prepare_seconds": statistics.median(prepare),
    }


def child_notebook(args) -> dict:
    return _our_fit("notebook", args.repeats)


def child_raw(args) -> dict:
    return _our_fit("raw", args.repeats)


def child_default(args) -> dict:
    return _our_fit("default", args.repeats)


def child_sklearn(args) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mnist_logreg.idx import read_idx

    raw = DATA_DIR / "MNIST" / "raw"
    x_train = read_idx(raw / "train-images-idx3-ubyte").reshape(60000, -1) / 255.0
    y_train = read_idx(raw / "train-labels-idx1-ubyte")
    x_test = read_idx(raw / "t10k-images-idx3-ubyte").reshape(10000, -1) / 255.0
    y_test = read_idx(raw / "t10k-labels-idx1-ubyte")
    fits = []
    for _ in range(args.sklearn_repeats):
        model = LogisticRegression()
        start = time.perf_counter()
        model.fit(x_train, y_train)
        fits.append(time.perf_counter() - start)
    return {
        "fit_seconds": statistics.median(fits),
        "fit_seconds_all": fits,
        "test_acc": float(np.mean(model.predict(x_test) == y_test)),
        "iterations": int(np.max(model.n_iter_)),
    }


CHILDREN = {
    "lesson": child_lesson,
    "notebook": child_notebook,
    "raw": child_raw,
    "default": child_default,
    "sklearn": child_sklearn,
}


# ---------------------------------------------------------------------------------------------
# The parent: run each child, measure its memory, and write the table.
# ---------------------------------------------------------------------------------------------


def run_child(command: list[str]) -> tuple[str, float, float]:
    """Run a command; return (stdout, wall seconds, peak RSS in MiB) of that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}")
    return stdout, wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def measure(name: str, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        name,
        "--repeats",
        str(args.repeats),
        "--lesson-epochs",
        str(args.lesson_epochs),
        "--sklearn-repeats",
        str(args.sklearn_repeats),
    ]
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    stdout, wall, peak = run_child(command)
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = peak
    return result


def measure_cli(repeats: int) -> dict:
    """The whole `mnist-logreg train` process, start-up included, on the default preset."""
    cli = Path(sys.executable).parent / "mnist-logreg"
    walls, peaks, accs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            out = Path(tmp) / f"run{i}"
            print(f"[bench] mnist-logreg train ({i + 1}/{repeats}) ...", file=sys.stderr, flush=True)
            command = [str(cli), "train", "--data-dir", str(DATA_DIR), "--out", str(out), "--no-progress"]
            _, wall, peak = run_child(command)
            walls.append(wall)
            peaks.append(peak)
            accs.append(json.loads((out / "metrics.json").read_text())["test_acc"])
    return {
        "wall_seconds": statistics.median(walls),
        "wall_seconds_all": walls,
        "peak_rss_mib": max(peaks),
        "test_acc": accs[-1],
    }


def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def summarise(results: dict) -> dict:
    lesson, notebook, raw, default, sklearn = (results[k] for k in ("lesson", "notebook", "raw", "default", "sklearn"))
    epochs = min(len(lesson["val_acc"]), len(notebook["val_acc"]))
    gaps = [abs(a - b) for a, b in zip(lesson["val_acc"][:epochs], notebook["val_acc"][:epochs])]
    return {
        "notebook_speedup_per_epoch": lesson["seconds_per_epoch"] / notebook["seconds_per_epoch"],
        "raw_speedup_vs_sklearn": sklearn["fit_seconds"] / raw["train_seconds"],
        "default_train_seconds_vs_raw": default["train_seconds"] / raw["train_seconds"],
        "notebook_max_val_acc_gap": max(gaps),
        "default_test_acc": default["test_acc"],
        "cli_wall_seconds": results["cli"]["wall_seconds"],
        "cli_peak_rss_mib": results["cli"]["peak_rss_mib"],
    }


def markdown(report: dict) -> str:
    r, s, m = report["results"], report["summary"], report["machine"]
    lesson_epochs = r["lesson"]["epochs"]
    rows = [
        (
            "lesson pipeline (DataLoader + autograd)",
            f"{r['lesson']['seconds_per_epoch']:.3f}",
            f"{r['lesson']['seconds_per_epoch'] * 20:.1f} (20 epochs, projected)",
            f"{r['lesson']['test_acc']:.4f} after {lesson_epochs} epochs",
            f"{r['lesson']['peak_rss_mib']:.0f}",
        ),
        (
            "`notebook` preset",
            f"{r['notebook']['seconds_per_epoch']:.3f}",
            f"{r['notebook']['train_seconds']:.2f} (20 epochs)",
            f"{r['notebook']['test_acc']:.4f}",
            f"{r['notebook']['peak_rss_mib']:.0f}",
        ),
        (
            "`raw` preset (raw pixels)",
            f"{r['raw']['seconds_per_epoch']:.3f}",
            f"{r['raw']['train_seconds']:.2f} ({r['raw']['epochs']} epochs)",
            f"{r['raw']['test_acc']:.4f}",
            f"{r['raw']['peak_rss_mib']:.0f}",
        ),
        (
            "`default` preset (deskewed digits)",
            f"{r['default']['seconds_per_epoch']:.3f}",
            f"{r['default']['train_seconds']:.2f} ({r['default']['epochs']} epochs) "
            f"+ {r['default']['prepare_seconds']:.2f} deskewing 70,000 images",
            f"{r['default']['test_acc']:.4f}",
            f"{r['default']['peak_rss_mib']:.0f}",
        ),
        (
            "scikit-learn `LogisticRegression()`",
            "—",
            f"{r['sklearn']['fit_seconds']:.1f} (lbfgs, {r['sklearn']['iterations']} iterations, 60,000 images)",
            f"{r['sklearn']['test_acc']:.4f}",
            f"{r['sklearn']['peak_rss_mib']:.0f}",
        ),
        (
            "`mnist-logreg train` (default, whole process)",
            "—",
            f"{r['cli']['wall_seconds']:.2f} wall, start-up included",
            f"{r['cli']['test_acc']:.4f}",
            f"{r['cli']['peak_rss_mib']:.0f}",
        ),
    ]
    lines = [
        "## Training: the lesson's pipeline, the presets, scikit-learn",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}, torch {m['torch']} with {m['torch_threads']} threads. "
        f"Run {report['date']} with `make bench` ({report['repeats']} repeats of each preset, medians; "
        f"the lesson's pipeline for {lesson_epochs} epochs).",
        "",
        "| pipeline | s / epoch | seconds to final accuracy | test accuracy | peak RSS (MiB) |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
        "| headline | measured | target (aim) |",
        "| --- | --- | --- |",
        f"| `notebook` speed-up per epoch over the lesson's pipeline | {s['notebook_speedup_per_epoch']:.1f}× | ≥ {NOTEBOOK_TARGET}× ({NOTEBOOK_AIM}×) |",
        f"| `raw` train_seconds vs scikit-learn fit (both on raw pixels) | {s['raw_speedup_vs_sklearn']:.1f}× | ≥ {DEFAULT_TARGET}× ({DEFAULT_AIM}×) |",
        f"| `default` (deskewed) train_seconds vs `raw` | {s['default_train_seconds_vs_raw']:.2f}× | ≤ 1.5× |",
        f"| largest val_acc gap, notebook vs lesson, first {lesson_epochs} epochs, same seed | {s['notebook_max_val_acc_gap']:.4f} | ≤ {MAX_VAL_ACC_GAP} |",
        f"| `default` test accuracy | {s['default_test_acc']:.4f} | ≥ 0.955 (0.96) |",
        f"| whole `mnist-logreg train` process | {s['cli_wall_seconds']:.2f} s | < 10 s |",
        f"| peak RSS of `mnist-logreg train` | {s['cli_peak_rss_mib']:.0f} MiB | < 1024 MiB |",
        "",
        "Per-epoch validation accuracy (same seed, same batches):",
        "",
        "| epoch | lesson | notebook |",
        "| --- | --- | --- |",
        *[
            f"| {i + 1} | {a:.4f} | {b:.4f} |"
            for i, (a, b) in enumerate(zip(r["lesson"]["val_acc"], r["notebook"]["val_acc"]))
        ],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each preset and of the CLI run")
    parser.add_argument("--lesson-epochs", type=int, default=3, help="epochs of the lesson's (slow) pipeline")
    parser.add_argument("--sklearn-repeats", type=int, default=1, help="scikit-learn fits (about a minute each)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    results = {name: measure(name, args) for name in CHILDREN}
    results["cli"] = measure_cli(min(args.repeats, 3))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "repeats": args.repeats,
        "machine": machine(),
        "results": results,
        "summary": summarise(results),
    }
    (HERE / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    update_section("training", text)
    print(text)


if __name__ == "__main__":
    main()
