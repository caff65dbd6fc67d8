"""How many pen copies and outliers a default epoch draws, and from pools of what size: candidates,
on the validation split.

Each candidate trains the default recipe with its shares per training digit (pen copies, drawn
outliers, Fashion-MNIST garments) and the outliers' loss weight, and is measured on validation
data alone: the validation digits' accuracy; outliers drawn with another seed and Fashion-MNIST's
test garments, the share not accepted; validation digits redrawn with each pen at training's
parameters, the share accepted. The default (config.COPIES_PER_EPOCH, OUTLIERS_PER_EPOCH,
REJECT_LOSS_WEIGHT) is chosen from this table. A second table trains the default shares on pools
of other sizes (config.PEN_COPIES_PER_DIGIT, DRAWN_OUTLIERS_PER_DIGIT, GARMENTS_PER_DIGIT), made
anew for each and timed as `train --no-cache` makes them. docs/presets.md holds both. Results go
to bench/shares-results.json.

    python -m bench.shares      # about 20 s a candidate on two cores, 40 s a pool
"""

from __future__ import annotations

import datetime
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.sections import update_docs

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent / "data"
RESULTS = HERE / "shares-results.json"
HELD_OUT = 3000  # drawn outliers and garments
PER_PEN = 2400  # validation digits redrawn with each pen
OTHER_SEED = 977  # the held-out outliers' and pen copies' stream: none of training's
# (pen copies, drawn outliers, garments) per training digit, and the outliers' loss weight
CANDIDATES = [
    (0.5, 1.0, 0.5, 1.0),
    (0.25, 0.4, 0.1, 1.0),
    (0.25, 0.3, 0.05, 1.0),
    (0.2, 0.25, 0.05, 1.0),
    (0.25, 0.2, 0.05, 1.0),
    (0.25, 0.2, 0.05, 1.5),
    (0.25, 0.2, 0.05, 2.0),
    (0.2, 0.25, 0.05, 2.0),
    (0.2, 0.2, 0.05, 2.0),
]
# (pen copies, drawn outliers, garments) per training digit, the pools an epoch's sample comes from:
# the first is what the default made before (a copy of every digit, 40,000 drawn, all 60,000 garments).
POOLS = [
    (1.0, 0.8, 1.2),
    (0.5, 0.4, 0.4),
    (0.25, 0.4, 0.12),
    (0.25, 0.2, 0.12),
]


def validation_sets(splits) -> dict:
    """The held-out images each candidate is measured on, (N, 28, 28) uint8: validation digits and
    their labels, drawn outliers, garments, and validation digits in each pen."""
    from mnist_logreg.data.catalog import DATASETS
    from mnist_logreg.data.idx import read_idx
    from mnist_logreg.data.outliers import drawn_outliers, garment_outliers
    from mnist_logreg.data.pens import PENS, pen_copies

    digits = splits.train_images[splits.val_indices].numpy()
    fashion = DATASETS["fashion-mnist"]
    test_garments = read_idx(fashion.raw_dir(DATA_DIR) / fashion.files[2].name)[:HELD_OUT]
    return {
        "digits": digits,
        "labels": splits.train_labels[splits.val_indices].numpy(),
        "drawn": drawn_outliers(HELD_OUT, OTHER_SEED),
        "garments": garment_outliers(test_garments),
        "pens": {pen: pen_copies(digits[:PER_PEN], {pen: 1.0}, OTHER_SEED)[0] for pen in PENS},
    }


def measure(run_dir: Path, sets: dict) -> dict:
    from mnist_logreg.model.calibration import accepted
    from mnist_logreg.model.linear import load_weights
    from mnist_logreg.report.scores import calibrated

    weights, info = load_weights(run_dir)
    digits = len(info.classes)

    def answers(images: np.ndarray) -> np.ndarray:
        return calibrated(weights, images)[2]  # the calibrated probabilities, as the report reads images

    def share_accepted(images: np.ndarray) -> float:
        return round(float(accepted(answers(images), digits, weights.threshold).mean()), 3)

    pens = {pen: share_accepted(images) for pen, images in sets["pens"].items()}
    return {
        "val_acc": round(float((answers(sets["digits"])[:, :digits].argmax(1) == sets["labels"]).mean()), 4),
        "drawn_refused": round(1 - share_accepted(sets["drawn"]), 3),
        "garments_refused": round(1 - share_accepted(sets["garments"]), 3),
        "pens": pens,
        "pens_mean": round(float(np.mean(list(pens.values()))), 3),
    }


def train(copies: float, drawn: float, garments: float, weight: float, out: Path) -> Path:
    """The default recipe with these shares and weight, in this process (train/run.py reads them from
    its module's names, which are set here)."""
    import mnist_logreg.train.run as run
    from mnist_logreg.config import get_preset

    run.COPIES_PER_EPOCH, run.REJECT_LOSS_WEIGHT = copies, weight
    run.OUTLIERS_PER_EPOCH = {"drawn": drawn, "fashion-mnist": garments}
    quiet = {"verbose": False, "log": lambda message: None}
    config = get_preset("default")
    return run.train_run("mnist", config, preset="default", data_dir=DATA_DIR, run_dir=out, **quiet).run_dir


def with_pools(copies: float, drawn: float, garments: float, out: Path) -> tuple[Path, float]:
    """The default recipe trained on pools of these sizes per training digit (set on the modules that
    make them), and the seconds its pools took to make anew over the cores."""
    import time
    from dataclasses import replace

    import mnist_logreg.data.outliers as outliers
    import mnist_logreg.data.pens as pens
    from mnist_logreg.config import COPIES_PER_EPOCH, OUTLIERS_PER_EPOCH, REJECT_LOSS_WEIGHT, get_preset
    from mnist_logreg.data.prepared import Making
    from mnist_logreg.data.splits import load_splits
    from mnist_logreg.train.run import with_extras
    from mnist_logreg.workers import cores

    kept = pens.PEN_COPIES_PER_DIGIT, outliers.DRAWN_OUTLIERS_PER_DIGIT, outliers.GARMENTS_PER_DIGIT
    pens.PEN_COPIES_PER_DIGIT, outliers.DRAWN_OUTLIERS_PER_DIGIT, outliers.GARMENTS_PER_DIGIT = copies, drawn, garments
    try:
        config = get_preset("default")
        splits = load_splits("mnist", DATA_DIR, val_size=config.val_size, seed=config.seed)
        start = time.perf_counter()
        with_extras(splits, config, DATA_DIR, replace(Making(log=lambda message: None, workers=cores()), cache=False))
        seconds = time.perf_counter() - start
        shares = (COPIES_PER_EPOCH, OUTLIERS_PER_EPOCH["drawn"], OUTLIERS_PER_EPOCH["fashion-mnist"])
        return train(*shares, REJECT_LOSS_WEIGHT, out), seconds
    finally:
        pens.PEN_COPIES_PER_DIGIT, outliers.DRAWN_OUTLIERS_PER_DIGIT, outliers.GARMENTS_PER_DIGIT = kept


def images_per_epoch(run_dir: Path) -> int:
    """The images one epoch of a run trained on, as its model.json records them: the digits, the pen
    copies and the outliers each epoch drew (where a pool holds fewer than a share asks, all of it)."""
    info = json.loads((run_dir / "model.json").read_text())
    return (
        info["splits"]["train"] + info["pens"]["copies_per_epoch"] + sum(info["reject"]["outliers_per_epoch"].values())
    )


def table(results: dict) -> str:
    lines = [
        f"Measured by `python -m bench.shares` on {results['date']}, on the validation split only "
        f"(outliers drawn with another seed and Fashion-MNIST's test garments, {HELD_OUT:,} each; "
        f"{PER_PEN:,} validation digits redrawn with each pen):",
        "",
        "| copies | drawn outliers | garments | loss weight | images an epoch | val accuracy | drawn refused "
        "| garments refused | pens accepted: mean, blurred |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["candidates"]:
        copies, drawn, garments, weight = row["shares"]
        lines.append(
            f"| {copies} | {drawn} | {garments} | {weight} | {row['images_per_epoch']:,} | {row['val_acc']:.4f} "
            f"| {row['drawn_refused']:.3f} | {row['garments_refused']:.3f} "
            f"| {row['pens_mean']:.3f}, {row['pens']['blurred']:.3f} |"
        )
    return "\n".join(lines)


def pools_table(results: dict) -> str:
    lines = [
        f"Measured by `python -m bench.shares` on {results['date']}, on the same validation data, each pool made "
        "anew over the cores as `train --no-cache` makes it (seconds: one run on a shared machine):",
        "",
        "| pen copies | drawn outliers | garments | images made | made in | val accuracy | drawn refused "
        "| garments refused | pens accepted: mean, blurred |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["pools"]:
        copies, drawn, garments = row["pools"]
        lines.append(
            f"| {copies} | {drawn} | {garments} | {row['images_made']:,} | {row['seconds']:.1f} s "
            f"| {row['val_acc']:.4f} | {row['drawn_refused']:.3f} | {row['garments_refused']:.3f} "
            f"| {row['pens_mean']:.3f}, {row['pens']['blurred']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    from mnist_logreg.config import get_preset
    from mnist_logreg.data.splits import load_splits

    config = get_preset("default")
    splits = load_splits("mnist", DATA_DIR, val_size=config.val_size, seed=config.seed)
    sets = validation_sets(splits)
    rows, pools = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n, shares in enumerate(CANDIDATES):
            run_dir = train(*shares, Path(tmp) / str(n))
            row = {"shares": list(shares), "images_per_epoch": images_per_epoch(run_dir)}
            rows.append(row | measure(run_dir, sets))
            print(json.dumps(rows[-1]), flush=True)
        for n, sizes in enumerate(POOLS):
            run_dir, seconds = with_pools(*sizes, Path(tmp) / f"pools-{n}")
            info = json.loads((run_dir / "model.json").read_text())
            made = sum(info["pens"]["counts"].values()) + sum(info["reject"]["outliers"].values())
            pools.append({"pools": list(sizes), "images_made": made, "seconds": round(seconds, 2)})
            pools[-1] |= measure(run_dir, sets)
            print(json.dumps(pools[-1]), flush=True)
    results = {"date": datetime.date.today().isoformat(), "candidates": rows, "pools": pools}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    update_docs("shares", table(results))
    update_docs("pools", pools_table(results))


if __name__ == "__main__":
    main()
