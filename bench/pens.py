"""Real digits in any pen: the default run against the same recipe without pen copies (--no-pens),
on handwriting none of them trained on, read through the whole photo path.

Both runs are trained here, side by side (or given with --runs WITH WITHOUT). Each is scored on
MNIST's test split; its test digits as 28×28 PNG files; a vertical stroke drawn with pens 2 to
30 px wide; the pens test set (tests/pens.py: test digits redrawn with each pen at parameters the
training never uses); digits in handwriting fonts; realistic photos (tests/photos.py); held-out
handwritten letters; and blank, noise and single-dot images. Results go to bench/pens-results.json,
the "pens" section of bench/RESULTS.md, the table of docs/not-a-digit.md, and docs/pens.png
(one test digit redrawn with each pen, as drawn and as the model sees it).

    python -m bench.pens            # trains both runs (about 8 minutes on two cores)
    python -m bench.pens --runs runs/latest runs/no-pens
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.sections import publish

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent / "data"
RESULTS = HERE / "pens-results.json"
FIGURE = HERE.parent / "docs" / "pens.png"
# The default run is also scored at other thresholds: each accepting this share of the validation
# digits (beside the run's own, config.ACCEPT_RATE), and 0, which accepts every image whose
# likeliest output is a digit: what no threshold goes beyond.
OTHER_ACCEPT_RATES = (0.93, 0.95, 0.97, 0.98)
DIGIT_LIKELIEST = "a digit likeliest"


def train(out: Path, *flags: str) -> Path:
    command = [sys.executable, "-m", "mnist_logreg", "train", "--out", str(out), "--no-report", "--no-progress"]
    subprocess.run([*command, "--data-dir", str(DATA_DIR), *flags], check=True)
    return out


def other_thresholds(run: Path) -> dict[str, float]:
    """{name: threshold}: the thresholds that accept each of OTHER_ACCEPT_RATES and config.ACCEPT_RATE
    of the run's validation digits, named by that share, and 0 (DIGIT_LIKELIEST)."""
    from mnist_logreg.config import ACCEPT_RATE
    from mnist_logreg.data.splits import load_splits
    from mnist_logreg.model.calibration import choose_threshold, digit_scores
    from mnist_logreg.model.linear import load_weights
    from mnist_logreg.report.scores import calibrated

    weights, info = load_weights(run)
    splits = load_splits("mnist", DATA_DIR, val_size=info.splits["val"], seed=info.seed)
    probabilities = calibrated(weights, splits.train_images[splits.val_indices].numpy())[2]
    scores = digit_scores(probabilities, len(info.classes))
    rates = sorted({*OTHER_ACCEPT_RATES, ACCEPT_RATE})
    return {f"{rate:.2f}": choose_threshold(scores, rate) for rate in rates} | {DIGIT_LIKELIEST: 0.0}


def measure(run: Path, thresholds: dict[str, float] | None = None) -> dict:
    """Every figure of the table for one run, and at ``thresholds`` ({name: threshold}) where given."""
    from mnist_logreg.data.idx import read_idx
    from mnist_logreg.images.preprocess import preprocess_array
    from mnist_logreg.infer.classify import predict_image_file, predict_pixels
    from mnist_logreg.model.linear import load_weights
    from mnist_logreg.report.scores import calibrated
    from tests.letters import letter_answers, single_dot, uniform_noise
    from tests.pens import (
        at_threshold,
        at_thresholds,
        score,
        score_digit_files,
        score_font_digits,
        score_pens,
        score_strokes,
    )
    from tests.photos import MAKERS, image_bytes

    weights, info = load_weights(run)
    metrics = json.loads((run / "metrics.json").read_text())
    raw = DATA_DIR / "MNIST" / "raw"
    images, labels = read_idx(raw / "t10k-images-idx3-ubyte"), read_idx(raw / "t10k-labels-idx1-ubyte")
    strokes = score_strokes(weights, info)
    rng = np.random.default_rng(7)
    chosen = rng.choice(len(labels), 150, replace=False)
    photos = {}
    for maker in sorted(MAKERS):
        answers = [
            (int(labels[i]), predict_pixels(preprocess_array(MAKERS[maker](images[i], rng)), weights, info.classes))
            for i in chosen
        ]
        photos[maker] = score(answers, thresholds)
    letters = letter_answers(weights, info)
    junk = [single_dot(), uniform_noise(0), uniform_noise(1)]
    blank = [np.zeros((28, 28), np.float32), np.ones((28, 28), np.float32)]
    measured = {
        "pens_record": info.pens,
        "test_acc": metrics["test_acc"],
        "test_accepted": metrics["reject"]["test_accepted"],
        "test_acc_accepted": metrics["reject"]["test_acc_accepted"],
        "ece_after": metrics["calibration"]["ece_after"],
        "train_seconds": metrics["train_seconds"],
        "digit_files": score_digit_files(weights, info, images, labels),
        "strokes_accepted_as_1": sum(a["accepted"] and a["class"] == "1" for a in strokes.values()),
        "strokes": {str(width): a["class"] if a["state"] != "unsure" else "unsure" for width, a in strokes.items()},
        "pens": score_pens(weights, info, images, labels, thresholds=thresholds),
        "font_digits": score_font_digits(weights, info, thresholds),
        "photos": photos,
        "letters_rejected": float(np.mean([not a["accepted"] for a in letters])),
        "junk_rejected": all(not predict_image_file(image_bytes(image), weights, info)["accepted"] for image in junk)
        and all(not predict_pixels(image, weights, info.classes)["accepted"] for image in blank),
    }
    if thresholds:
        test_probabilities = calibrated(weights, images)[2]
        measured["at_threshold"] = {
            "thresholds": thresholds,
            "test": {name: at_threshold(test_probabilities, labels, value) for name, value in thresholds.items()},
            # a letter is never right: only its share accepted counts
            "letters": at_thresholds([(-1, answer) for answer in letters], thresholds),
        }
    return measured


def draw_figure(path: Path) -> None:
    """One test digit redrawn with each pen at its first test parameter: as drawn (top) and as the model sees it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnist_logreg.data.idx import read_idx
    from mnist_logreg.data.pens import PENS, redrawn_ink
    from mnist_logreg.images.preprocess import clean_ink, place_ink

    digit = read_idx(DATA_DIR / "MNIST" / "raw" / "t10k-images-idx3-ubyte")[0]
    fig, axes = plt.subplots(2, len(PENS), figsize=(1.5 * len(PENS), 3.4), layout="constrained")
    for column, pen in enumerate(PENS):
        ink = redrawn_ink(digit, pen, PENS[pen].test[0], np.random.default_rng(0))
        axes[0, column].imshow(1 - ink, cmap="gray", vmin=0, vmax=1)
        axes[1, column].imshow(place_ink(clean_ink(ink)), cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(pen, fontsize=10)
        for row in axes[:, column]:
            row.set_xticks([])
            row.set_yticks([])
    axes[0, 0].set_ylabel("drawn", fontsize=9)
    axes[1, 0].set_ylabel("the model sees", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pair(row: dict, key: str) -> str:
    return f"{row[key]:.3f}"


def table(results: dict) -> str:
    """The markdown table: each measure for the run with pens and the one without."""
    with_pens, without = results["with pens"], results["without pens"]
    lines = [
        f"Measured by `python -m bench.pens` on {results['date']}, two default runs side by side "
        "(the same recipe and photo path; one without its pen copies, `--no-pens`):",
        "",
        "Shares of the default run's pen copies: "
        + ", ".join(f"{pen} {count:,}" for pen, count in with_pens["pens_record"]["counts"].items())
        + f" (copies of {with_pens['pens_record']['copies_per_digit']:.0%} of the training digits).",
        "",
        "| measure | default | without pens |",
        "| --- | --- | --- |",
    ]

    def row(name: str, value) -> None:
        lines.append(f"| {name} | {value(with_pens)} | {value(without)} |")

    row("MNIST test accuracy", lambda r: f"{r['test_acc']:.4f}")
    row(
        "MNIST test digits accepted / right among accepted",
        lambda r: f"{r['test_accepted']:.3f} / {r['test_acc_accepted']:.4f}",
    )
    row("test ECE after calibration", lambda r: f"{r['ece_after']:.4f}")
    row(
        f"MNIST test digits as 28×28 PNG files ({with_pens['digit_files']['count']}): accepted / right among accepted",
        lambda r: f"{_pair(r['digit_files'], 'accepted')} / {_pair(r['digit_files'], 'right')}",
    )
    row(
        f"a vertical stroke, pen {min(map(int, with_pens['strokes']))}–{max(map(int, with_pens['strokes']))} px on 300 px: widths read as an accepted 1",
        lambda r: f"{r['strokes_accepted_as_1']} of {len(r['strokes'])}",
    )
    for pen in with_pens["pens"]:
        count = with_pens["pens"][pen]["count"]
        row(
            f"pens test set, {pen} ({count}): accepted / right among accepted",
            lambda r, pen=pen: f"{_pair(r['pens'][pen], 'accepted')} / {_pair(r['pens'][pen], 'right')}",
        )
    fonts = with_pens["font_digits"]
    row(
        f"handwriting-font digits ({fonts['count']}): top class right / accepted",
        lambda r: f"{_pair(r['font_digits'], 'top_right')} / {_pair(r['font_digits'], 'accepted')}",
    )
    for maker in with_pens["photos"]:
        row(f"realistic photos, {maker} (150): accepted", lambda r, maker=maker: _pair(r["photos"][maker], "accepted"))
    row("held-out letters not accepted (not a digit, or unsure)", lambda r: f"{r['letters_rejected']:.3f}")
    row(
        "blank, full, noise and single-dot images",
        lambda r: "all rejected" if r["junk_rejected"] else "not all rejected",
    )
    return "\n".join(lines) + "\n\n" + by_value_table(with_pens["pens"]) + "\n\n" + threshold_table(with_pens)


def by_value_table(pens: dict) -> str:
    """The default run's pens test set by each pen's parameter: where a pen is too strong for the
    likeliest class to be right, accepting fewer is the honest answer."""
    from mnist_logreg.data.pens import PENS

    lines = [
        "The pens test set by parameter, default run (a pen's images are split evenly over its parameters):",
        "",
        "| pen (its parameter) | value | images | accepted | right among accepted | likeliest class right |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for pen, scores in pens.items():
        for n, (value, scored) in enumerate(scores["by_value"].items()):
            name = f"{pen} ({PENS[pen].describes})" if n == 0 else ""
            lines.append(
                f"| {name} | {value} | {scored['count']} | {scored['accepted']:.2f} "
                f"| {scored['right']:.2f} | {scored['top_right']:.2f} |"
            )
    return "\n".join(lines)


def threshold_table(run: dict) -> str:
    """The default run at other thresholds: what accepting more or fewer of the validation digits
    trades, and, at DIGIT_LIKELIEST, the most any threshold could accept."""
    from mnist_logreg.config import ACCEPT_RATE

    others = run["at_threshold"]
    lines = [
        "The default run at other thresholds, each accepting another share of the validation digits "
        f"(its own accepts {ACCEPT_RATE:.0%}; `--reject-below P` sets one for a `predict` or `read`). The last row "
        "accepts every image whose likeliest output is a digit, as no threshold can exceed: a test set's "
        "share there, and its accuracy, bound what any threshold gives it.",
        "",
        "| validation digits accepted | threshold | MNIST test digits: accepted / right among accepted "
        "| pens test set accepted: mean of six / the lowest | pens: right among accepted, the lowest "
        "| handwriting-font digits: accepted / right among accepted | realistic photos accepted: the lowest of four "
        "| held-out letters not accepted |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, threshold in others["thresholds"].items():
        pens = {pen: scored["at_threshold"][name] for pen, scored in run["pens"].items()}
        lowest = min(pens, key=lambda pen: pens[pen]["accepted"])
        least_right = min(pens, key=lambda pen: pens[pen]["right"])
        test, fonts = others["test"][name], run["font_digits"]["at_threshold"][name]
        photos = min(scored["at_threshold"][name]["accepted"] for scored in run["photos"].values())
        lines.append(
            f"| {name} | {threshold:.3f} | {test['accepted']:.3f} / {test['right']:.4f} "
            f"| {np.mean([p['accepted'] for p in pens.values()]):.3f} / {pens[lowest]['accepted']:.3f} ({lowest}) "
            f"| {pens[least_right]['right']:.3f} ({least_right}) | {fonts['accepted']:.3f} / {fonts['right']:.3f} "
            f"| {photos:.3f} | {1 - others['letters'][name]['accepted']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", nargs=2, type=Path, metavar=("WITH", "WITHOUT"), help="score these runs instead of training"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.runs:
            with_pens, without = args.runs
        else:
            with_pens = train(Path(scratch) / "default")
            without = train(Path(scratch) / "no-pens", "--no-pens")
        results = {
            "date": datetime.date.today().isoformat(),
            "with pens": measure(with_pens, other_thresholds(with_pens)),
            "without pens": measure(without),
        }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    draw_figure(FIGURE)
    publish("pens", "Real digits in any pen", table(results))


if __name__ == "__main__":
    main()
