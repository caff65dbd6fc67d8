"""Predicting a folder of photos: images/s by worker count, as whole `mnist-logreg predict` processes.

    make bench-predict      # or, from the repository root: .venv/bin/python -m bench.predict_folder [--images 2000] [--rounds 3]

Writes 640×480 JPEG photos of MNIST test digits into a temporary folder, then runs
`predict FOLDER --jsonl --workers N` for N = 1 and 2 in interleaved rounds (start-up included,
output to /dev/null). Peak memory is read for two folder sizes, to show it stays flat, and again
for 10,000 and 100,000 small scans. Results go to bench/predict-results.json and the "predict"
section of bench/RESULTS.md.
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

from bench.sections import update_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = REPO / "data"


def write_photos(folder: Path, count: int, kind: str = "photo") -> None:
    """``count`` MNIST test digits as 640×480 JPEG photos on paper, or as small 84×84 PNG scans."""
    import numpy as np
    from PIL import Image

    from mnist_logreg.data.splits import load_splits
    from tests.photos import image_bytes, on_paper

    digits, _ = load_splits("mnist", DATA_DIR).tensors("test")
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        digit = digits[i % len(digits), 0].numpy()
        if kind == "scan":  # dark ink on white: quick to write and read, for a folder of 100,000
            Image.fromarray(255 - digit).resize((84, 84)).save(folder / f"{i:06d}.png")
            continue
        (folder / f"{i:06d}.jpg").write_bytes(image_bytes(on_paper(digit, rng).resize((640, 480)), "JPEG", quality=85))


def run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB of the process and the workers it waited for)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scans", type=int, default=100_000, help="small scans for the memory check at scale")
    parser.add_argument("--write", nargs=3, metavar=("FOLDER", "COUNT", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write_photos(Path(args.write[0]), int(args.write[1]), args.write[2])
        return
    cli = str(Path(sys.executable).parent / "mnist-logreg")
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        folder, small, run_dir = Path(tmp) / "photos", Path(tmp) / "few", Path(tmp) / "run"
        print(f"[bench-predict] writing {args.images} photos ...", file=sys.stderr, flush=True)
        # In a child process: this one must not import torch, or every command it starts would
        # count torch's memory in its peak RSS (a child's counts what it shared until exec).
        for target, count in ((folder, args.images), (small, args.images // 4)):
            subprocess.run(
                [sys.executable, "-m", "bench.predict_folder", "--write", str(target), str(count), "photo"],
                check=True,
                cwd=REPO,
            )
        subprocess.run([cli, "train", "--data-dir", str(DATA_DIR), "--out", str(run_dir), "--no-report", "--no-progress"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        for number in range(args.rounds):
            for workers in (1, 2):
                print(f"[bench-predict] round {number + 1}: {workers} worker(s) ...", file=sys.stderr, flush=True)
                wall, _ = run([cli, "predict", str(run_dir), str(folder), "--jsonl", "--workers", str(workers)])
                times[workers].append(wall)
        _, peak_small = run([cli, "predict", str(run_dir), str(small), "--jsonl", "--workers", "2"])
        _, peak_large = run([cli, "predict", str(run_dir), str(folder), "--jsonl", "--workers", "2"])
        scale = {}  # a tenth of the scans, then all of them: the same memory, and the time in proportion
        for count in (args.scans // 10, args.scans):
            print(f"[bench-predict] {count} scans ...", file=sys.stderr, flush=True)
            scans = Path(tmp) / f"scans-{count}"
            subprocess.run(
                [sys.executable, "-m", "bench.predict_folder", "--write", str(scans), str(count), "scan"],
                check=True,
                cwd=REPO,
            )
            wall, peak = run([cli, "predict", str(run_dir), str(scans), "--jsonl", "--workers", "2"])
            scale[str(count)] = {"images_per_s": count / wall, "peak_rss_mib": peak}
    rates = {w: [args.images / t for t in walls] for w, walls in times.items()}
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "images": args.images,
        "cores": os.cpu_count(),
        "images_per_s": {str(w): {"best": max(r), "median": statistics.median(r), "all": r} for w, r in rates.items()},
        "speed_up_of_bests": max(rates[2]) / max(rates[1]),
        "peak_rss_mib": {str(args.images // 4): peak_small, str(args.images): peak_large},
        "scans_84px_png": scale,
    }
    (HERE / "predict-results.json").write_text(json.dumps(report, indent=2) + "\n")
    r = report["images_per_s"]
    text = "\n".join(
        [
            "## Predicting a folder: `mnist-logreg predict FOLDER --jsonl --workers N`",
            "",
            f"Run {report['date']} with `make bench-predict`: {args.images} 640×480 JPEG photos, whole processes "
            f"(start-up included), {args.rounds} interleaved rounds, {report['cores']} cores.",
            "",
            "| workers | images/s, best / median |",
            "| --- | --- |",
            f"| 1 | {r['1']['best']:.0f} / {r['1']['median']:.0f} |",
            f"| 2 | {r['2']['best']:.0f} / {r['2']['median']:.0f} |",
            "",
            f"Speed-up of 2 workers over 1 (bests): {report['speed_up_of_bests']:.2f}×. Peak RSS with 2 workers: "
            f"{peak_small:.0f} MiB for {args.images // 4} photos, {peak_large:.0f} MiB for {args.images}.",
            "",
            "At scale, small 84×84 PNG scans with 2 workers: "
            + "; ".join(
                f"{int(count):,} files at {m['images_per_s']:.0f} images/s, peak RSS {m['peak_rss_mib']:.0f} MiB"
                for count, m in scale.items()
            )
            + ".",
            "",
        ]
    )
    update_section("predict", text)
    print(text)


if __name__ == "__main__":
    main()
