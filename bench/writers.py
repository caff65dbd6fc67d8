"""Learn your hand: the default run tuned on each writer (a handwriting font, tests/writers.py) with
k = 1, 3, 5 and 10 photos per digit, scored on that writer's 15 held-out photos per digit; then
what tuning cost elsewhere, after k = 10: the MNIST test split, and the handwritten letters (held
out from every outlier) still refused. Also how long ``mnist-logreg tune`` takes on 50 images, as
a whole process, and in the server from ``POST /api/tune`` to the tuned model served. Results go
to bench/writers-results.json, the "writers" section of bench/RESULTS.md and the table of
docs/your-hand.md.

    python -m bench.writers [--run RUN]   # from the repository root, after make fonts
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sections import publish

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent / "data"
RESULTS = HERE / "writers-results.json"
KS = (1, 3, 5, 10)
HARD = 0.95  # a writer the run reads worse than this before tuning is one tuning is for


def train(out: Path) -> Path:
    command = [sys.executable, "-m", "mnist_logreg", "train", "--out", str(out), "--no-report", "--no-progress"]
    subprocess.run([*command, "--data-dir", str(DATA_DIR)], check=True)
    return out


def measure_writer(run: Path, font: Path, scratch: Path) -> dict:
    from mnist_logreg.train.tune import tune_run
    from tests.letters import letters_refused
    from tests.writers import write_writer

    row = {"writer": font.stem}
    for k in KS:
        folder = write_writer(scratch / f"{font.stem}-{k}", font, k)
        result = tune_run(run, folder, out=scratch / f"{font.stem}-{k}-tuned", data_dir=DATA_DIR, log=lambda m: None)
        row["before"] = result.before["writer"]["acc"]
        row[f"k{k}"] = result.after["writer"]["acc"]
        row[f"k{k}_seconds"] = result.seconds
        if k == max(KS):
            row["test_before"], row["test_after"] = result.before["test"]["acc"], result.after["test"]["acc"]
            row["letters_refused_after"] = letters_refused(result.run_dir)
    return row


LETTER_WRITERS = ("Humor-Sans", "femkeklaver")  # two whole font families, held out of the letters run


def write_letters(root: Path, fonts: list[Path], k: int | None = None, seed: int = 0) -> Path:
    """The capital letters of ``fonts`` as a folder: with ``k``, one writer's k photos per letter in
    train/ and the others in test/; without, every photo in one folder (a run's training set)."""
    import numpy as np

    from tests.letters import CAPITALS, on_paper
    from tests.writers import SIZES, SLANTS

    rng = np.random.default_rng(seed)
    shots = [(size, slant) for size in SIZES for slant in SLANTS]
    for font in fonts:
        for letter in CAPITALS:
            order = rng.permutation(len(shots))
            for rank, i in enumerate(order):
                split = "" if k is None else "train" if rank < k else "test"
                (root / split / letter).mkdir(parents=True, exist_ok=True)
                photo = on_paper(letter, font, shots[i][0]).rotate(shots[i][1], expand=True, fillcolor=235)
                photo.save(root / split / letter / f"{font.stem}-{i:02d}.png")
    return root


def measure_letters(scratch: Path) -> list[dict]:
    """A letters run trained on every font but two families, then tuned on each of those as a writer."""
    from mnist_logreg.train.tune import tune_run
    from tests.letters import fonts

    seen = [font for font in fonts() if font.stem not in LETTER_WRITERS]
    folder = write_letters(scratch / "letters", seen)
    run = scratch / "letters-run"
    command = [sys.executable, "-m", "mnist_logreg", "train", "--dataset", str(folder), "--layout", "digits"]
    subprocess.run([*command, "--out", str(run), "--no-report", "--no-progress"], check=True)
    rows = []
    for font in (font for font in fonts() if font.stem in LETTER_WRITERS):
        row = {"writer": font.stem}
        for k in KS:
            writer = write_letters(scratch / f"letters-{font.stem}-{k}", [font], k)
            result = tune_run(run, writer, out=scratch / f"letters-{font.stem}-{k}-tuned", log=lambda m: None)
            row["before"], row[f"k{k}"] = result.before["writer"]["acc"], result.after["writer"]["acc"]
        rows.append(row)
    return rows


def timed_command(run: Path, font: Path, scratch: Path, tunes: int = 3) -> tuple[float, list[float]]:
    """Seconds of ``mnist-logreg tune`` on 50 images (k = 5), start-up included: the run's first tune,
    which draws its replay pool and keeps it in the data folder, and ``tunes`` more, which read it."""
    from mnist_logreg.train.tune import REPLAY_CACHE
    from tests.writers import write_writer

    folder = write_writer(scratch / "timed", font, 5)
    command = [sys.executable, "-m", "mnist_logreg", "tune", str(run), "--dataset", str(folder)]
    shutil.rmtree(DATA_DIR / REPLAY_CACHE, ignore_errors=True)  # as before the run's first tune
    seconds = []
    for n in range(1 + tunes):
        start = time.perf_counter()
        out = scratch / f"timed-tuned-{n}"
        subprocess.run([*command, "--out", str(out), "--data-dir", str(DATA_DIR)], check=True)
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1:]


def timed_server(run: Path, font: Path, scratch: Path, tunes: int = 3) -> list[float]:
    """Seconds from ``POST /api/tune`` to the tuned model served, on 50 corrections (k = 5) sent to
    ``serve --corrections``, ``tunes`` times over, once the server is ready to tune (as one in use is)."""
    from tests.servers import correct, request, serving
    from tests.writers import write_writer

    folder = write_writer(scratch / "served", font, 5)
    options = ("--corrections", str(scratch / "corrections"), "--data-dir", str(DATA_DIR))
    seconds = []
    with serving(run, options=options) as url:
        for image in sorted((folder / "train").rglob("*.png")):
            assert correct(url, image.read_bytes(), image.parent.name)[0] == 201
        while not request(f"{url}/api/model")[1]["corrections"]["ready"]:  # its data read as it starts
            time.sleep(0.1)
        for _ in range(tunes):
            start = time.perf_counter()
            assert request(f"{url}/api/tune", b"", method="POST")[0] == 202
            while request(f"{url}/api/model")[1]["corrections"]["tuning"]:
                time.sleep(0.05)  # often enough to see the swap within a few per cent, not so often as to slow the tune
            seconds.append(time.perf_counter() - start)
    return seconds


def _largest_drop(changes: list[float]) -> str:
    """The largest fall among the writers' changes in letters refused, or that none fell."""
    return f"the largest drop {-min(changes):.3f}" if min(changes) < 0 else "no writer's tune refused fewer"


def table(results: dict) -> str:
    rows = results["writers"]
    hard = [row for row in rows if row["before"] < HARD]
    lines = [
        f"The last `make bench` ({results['date']}): the default run tuned on each of {len(rows)} writers "
        f"(handwriting fonts), scored on 150 held-out photos each.",
        "",
        "| writer | before | k = 1 | k = 3 | k = 5 | k = 10 | MNIST test after k = 10 | letters refused after k = 10 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        scores = " | ".join(f"{row[f'k{k}']:.3f}" for k in KS)
        lines.append(
            f"| {row['writer']} | {row['before']:.3f} | {scores} | {row['test_after']:.4f} "
            f"(was {row['test_before']:.4f}) | {row['letters_refused_after']:.3f} |"
        )
    medians = {k: statistics.median(row[f"k{k}"] for row in hard) for k in KS} if hard else {}
    drops = [row["test_before"] - row["test_after"] for row in rows]
    letters = [row["letters_refused_after"] - results["letters_refused_before"] for row in rows]
    lines += [
        "",
        f"Writers read below {HARD} before tuning: {len(hard)}; their median accuracy after k = 1, 3, 5, 10: "
        + ", ".join(f"{medians[k]:.3f}" for k in KS)
        + f". MNIST test accuracy after k = 10: median drop {statistics.median(drops):.4f}, largest {max(drops):.4f}. "
        f"Letters refused before tuning {results['letters_refused_before']:.3f}; after k = 10 they change by "
        f"{statistics.median(letters):+.3f} (median), {_largest_drop(letters)}. `tune` on 50 images took "
        f"{statistics.median(results['command_seconds']):.1f} s as a whole process (median of "
        f"{len(results['command_seconds'])}, best {min(results['command_seconds']):.1f} s; the run's first tune, "
        f"which draws the images it replays and keeps them in `data/replay/`, {results['first_command_seconds']:.1f} s), "
        f"{results['median_tune_seconds']:.1f} s of it tuning (the median over every tune above); in the server (`serve --corrections`, 50 corrections), "
        f"{statistics.median(results['server_seconds']):.2f} s from `POST /api/tune` to the tuned model served "
        f"(median of {len(results['server_seconds'])}).",
        "",
        "The letters example: a run of the capital letters trained on every font but two families, each of "
        "those then a writer, scored on its photos of each letter not learnt from (25 − k):",
        "",
        "| writer | before | k = 1 | k = 3 | k = 5 | k = 10 |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {row['writer']} | {row['before']:.3f} | " + " | ".join(f"{row[f'k{k}']:.3f}" for k in KS) + " |"
            for row in results["letters"]
        ),
        "| both families | "
        + " | ".join(
            f"{statistics.fmean(row[key] for row in results['letters']):.3f}"
            for key in ["before", *(f"k{k}" for k in KS)]
        )
        + " |",
        "",
        "Each family is scored on as many photos, so the last row is the accuracy over both.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="tune this run instead of training the default one")
    args = parser.parse_args()
    from tests.letters import fonts, letters_refused

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        run = args.run or train(scratch / "default")
        writers = []
        for font in fonts():
            print(f"[bench-writers] {font.stem} ...", flush=True)
            writers.append(measure_writer(run, font, scratch))
        first_command, commands = timed_command(run, fonts()[0], scratch)
        results = {
            "date": datetime.date.today().isoformat(),
            "writers": writers,
            "letters_refused_before": letters_refused(run),
            "first_command_seconds": first_command,
            "command_seconds": commands,
            "median_tune_seconds": statistics.median(row[f"k{k}_seconds"] for row in writers for k in KS),
            "server_seconds": timed_server(run, fonts()[0], scratch),
            "letters": measure_letters(scratch),
        }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    publish("writers", "Learn your hand", table(results))


if __name__ == "__main__":
    main()
