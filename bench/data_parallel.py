"""Training in one process against two under torchrun: time, accuracy and weights, side by side.

    make bench-parallel     # or, from the repository root: .venv/bin/python -m bench.data_parallel [--rounds 3]

Each round runs the default preset as a whole command, `mnist-logreg train` and
`torchrun --nproc-per-node 2 -m mnist_logreg train`, start-up included, interleaved so that the
machine's drift hits both alike; then one epoch each way, to compare the weights. Results go to
bench/parallel-results.json, the "parallel" section of bench/RESULTS.md and the paragraph of docs/training-at-scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.sections import update_docs, update_section

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent / "data"

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
COMMANDS = {1: [sys.executable, "-m", "mnist_logreg"], 2: [*TORCHRUN, "-m", "mnist_logreg"]}


def train(processes: int, run_dir: Path, *flags: str) -> tuple[float, dict]:
    """(wall seconds of the whole command, the run's metrics.json)."""
    command = [*COMMANDS[processes], "train", "--data-dir", str(DATA_DIR), "--out", str(run_dir), "--overwrite", *flags]
    start = time.perf_counter()
    subprocess.run([*command, "--no-progress", "--no-report"], check=True, capture_output=True)
    wall = time.perf_counter() - start
    return wall, json.loads((run_dir / "metrics.json").read_text())


def weight_difference(run_a: Path, run_b: Path) -> float:
    a, b = np.load(run_a / "weights.npz"), np.load(run_b / "weights.npz")
    return max(float(np.abs(a[name] - b[name]).max()) for name in ("weight", "bias"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    walls: dict[int, list[float]] = {1: [], 2: []}
    train_seconds: dict[int, list[float]] = {1: [], 2: []}
    accuracy: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            for processes in (1, 2):
                print(f"[bench-parallel] round {number + 1}: {processes} process(es) ...", file=sys.stderr, flush=True)
                wall, metrics = train(processes, Path(tmp) / f"run-{number}-{processes}")
                walls[processes].append(wall)
                train_seconds[processes].append(metrics["train_seconds"])
                accuracy[processes] = metrics["test_acc"]  # the same in every round: training is deterministic
        full_difference = weight_difference(Path(tmp) / "run-0-1", Path(tmp) / "run-0-2")
        for processes in (1, 2):
            train(processes, Path(tmp) / f"epoch-{processes}", "--epochs", "1")
        epoch_difference = weight_difference(Path(tmp) / "epoch-1", Path(tmp) / "epoch-2")
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "wall_s": {str(p): {"median": statistics.median(w), "all": w} for p, w in walls.items()},
        "train_seconds": {str(p): {"median": statistics.median(s), "all": s} for p, s in train_seconds.items()},
        "test_acc": {str(p): a for p, a in accuracy.items()},
        "max_weight_difference": {"after_1_epoch": epoch_difference, "after_the_preset": full_difference},
    }
    (HERE / "parallel-results.json").write_text(json.dumps(report, indent=2) + "\n")
    w, s = report["wall_s"], report["train_seconds"]
    text = "\n".join(
        [
            "## Data-parallel training: `torchrun --nproc-per-node 2 -m mnist_logreg train`",
            "",
            f"Run {report['date']} with `make bench-parallel`: the default preset on MNIST, one process against "
            f"two under torchrun (gloo, one thread each), {args.rounds} interleaved rounds, {report['cores']} cores.",
            "",
            "| processes | whole command, s (median) | train_seconds (median) | test_acc |",
            "| --- | --- | --- | --- |",
            f"| 1 | {w['1']['median']:.2f} | {s['1']['median']:.2f} | {accuracy[1]:.4f} |",
            f"| 2 | {w['2']['median']:.2f} | {s['2']['median']:.2f} | {accuracy[2]:.4f} |",
            "",
            f"Largest weight difference between the two: {epoch_difference:.1e} after one epoch, "
            f"{full_difference:.1e} after the preset's six.",
            "",
        ]
    )
    update_section("parallel", text)
    update_docs("parallel", docs_paragraph(report))
    print(text)


def docs_paragraph(report: dict) -> str:
    w, s, d = report["wall_s"], report["train_seconds"], report["max_weight_difference"]
    return (
        f"The last `make bench-parallel` ({report['date'][:10]}, {report['cores']} cores, {report['rounds']} "
        f"interleaved rounds) measured, for the default preset on MNIST (medians): one process trained in "
        f"{s['1']['median']:.2f} s (the whole command {w['1']['median']:.1f} s), two processes in "
        f"{s['2']['median']:.2f} s ({w['2']['median']:.1f} s). They reached test accuracies of "
        f"{report['test_acc']['1']:.4f} and {report['test_acc']['2']:.4f}, and their weights differed by at most "
        f"{d['after_1_epoch']:.1e} after one epoch and {d['after_the_preset']:.1e} at the end."
    )


if __name__ == "__main__":
    main()
