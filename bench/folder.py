"""Reading a folder dataset: 50,000 small PNGs decoded the first time, and read from the cache after.

The folder holds MNIST's first 50,000 training digits as 28×28 PNG scans (dark ink on white),
one subfolder per digit. Each round removes the cache, reads the folder as `train --dataset
FOLDER` does (scanned, decoded in one worker process per core, the digits layout), then reads it
again from the cache. Results go to bench/folder-results.json, the "folder" section of
bench/RESULTS.md and the paragraph of docs/your-own-images.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.sections import update_docs, update_section

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent / "data"


def write_scans(root: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    from mnist_logreg.data.idx import read_idx

    digits = read_idx(DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte")[:count]
    labels = read_idx(DATA_DIR / "MNIST" / "raw" / "train-labels-idx1-ubyte")[:count]
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    for n, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        Image.fromarray(255 - digit).save(root / str(label) / f"{n:05d}.png")
    assert len(np.unique(labels)) == 10


def timed_read(root: Path) -> float:
    from mnist_logreg.data.folder_images import read_folder
    from mnist_logreg.data.folders import open_folder

    start = time.perf_counter()
    arrays = read_folder(open_folder(root))
    seconds = time.perf_counter() - start
    assert arrays.summary()["unreadable"] == 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    first, cached = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "digits"
        print(f"[bench-folder] writing {args.images} PNGs ...", flush=True)
        write_scans(root, args.images)
        for number in range(args.rounds):
            print(f"[bench-folder] round {number + 1}/{args.rounds} ...", flush=True)
            for cache in root.glob(".mnist-logreg-cache-*"):
                cache.unlink()
            first.append(timed_read(root))
            cached.append(timed_read(root))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "images": args.images,
        "rounds": args.rounds,
        "first_read_s": {"best": min(first), "median": statistics.median(first), "all": first},
        "cached_read_s": {"best": min(cached), "median": statistics.median(cached), "all": cached},
    }
    (HERE / "folder-results.json").write_text(json.dumps(report, indent=2) + "\n")
    f, c = report["first_read_s"], report["cached_read_s"]
    paragraph = (
        f"The last `make bench` ({report['date'][:10]}, {report['cores']} cores, {args.rounds} rounds) read a folder of "
        f"{args.images:,} small PNG scans (MNIST's training digits, the digits layout): the first time in "
        f"{f['median']:.1f} s (best {f['best']:.1f} s), and from the cache in {c['median']:.2f} s (best {c['best']:.2f} s)."
    )
    update_section("folder", f"## Reading a folder dataset\n\n{paragraph}\n")
    update_docs("folder", paragraph)
    print(paragraph)


if __name__ == "__main__":
    main()
