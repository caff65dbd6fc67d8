"""What a run learned, shown: ``write_report`` draws the figures and writes one self-contained
report.html into the run folder; ``compare_runs`` overlays the curves of several runs.
"""

from __future__ import annotations

from pathlib import Path

from ..data.arrays import reopen_run_data
from ..data.catalog import DEFAULT_DATA_DIR, DatasetSpec
from ..data.folders import check_can_move
from ..errors import SettingError
from ..model.linear import load_weights
from ..model.metrics import confusion_matrix, per_class_metrics
from ..model.run_folder import read_history, read_info, read_metrics, real_run_dir
from .figures import (
    figures_of,
    plot_class_evidence,
    plot_confusion,
    plot_curves,
    plot_misclassified,
    plot_mistakes_evidence,
    plot_reliability,
    plot_samples,
    plot_transformed,
    plot_weights,
)
from .page import render_html
from .scores import pen_scores, predict_test_set

REPORT_FILE = "report.html"


def write_report(
    run_dir: Path | str,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    *,
    dataset: DatasetSpec | None = None,
    splits=None,
    moved_to: Path | str | None = None,
    progress: bool = False,
) -> Path:
    """Write the figures, per-class metrics and ``report.html`` into ``run_dir``; return the HTML path.

    ``dataset`` overrides the dataset named in model.json (for datasets outside the table);
    ``splits`` passes the run's data when the caller already holds it (right after training);
    ``moved_to`` is where a folder run's images are now, if they moved; ``progress`` shows a bar
    over the figures (together they take seconds). Everything here is numpy: the run's weights.npz and the dataset's files.
    """
    run_dir = Path(run_dir)
    weights, info = load_weights(run_dir)
    check_can_move(info.source, moved_to, info.dataset)  # a wrong flag is said before anything is read
    history = read_history(run_dir)
    metrics = read_metrics(run_dir)
    data = splits.arrays() if splits is not None else reopen_run_data(info, data_dir, dataset, moved_to)[0]
    classes = info.classes

    # The figures' own count of the test predictions (metrics.json holds the same for new runs;
    # runs from before it was written at training time lack it).
    predictions = predict_test_set(weights, data, len(classes))
    confusion = confusion_matrix(predictions.labels, predictions.predicted, len(classes))
    per_class = per_class_metrics(confusion, classes)

    drawings = {
        "curves.png": lambda path: plot_curves({"": history}, path, f"{info.dataset} — {info.preset} preset"),
        "confusion.png": lambda path: plot_confusion(confusion, classes, path),
        "class-evidence.png": lambda path: plot_class_evidence(weights, predictions, classes, path),
        "weights.png": lambda path: plot_weights(weights, classes, path),
        "misclassified.png": lambda path: plot_misclassified(predictions, classes, path),
        "samples.png": lambda path: plot_samples(data, classes, path),
        "evidence.png": lambda path: plot_mistakes_evidence(weights, predictions, classes, path),
        "calibration.png": lambda path: plot_reliability(weights, predictions, path),
        "deskew.png": lambda path: plot_transformed(data, info.input_transform, path),
    }
    from tqdm.auto import tqdm

    for name in tqdm(figures_of(info), desc="report", unit="figure", leave=False, disable=not progress):
        drawings[name](run_dir / name)

    pens = pen_scores(weights, info, predictions) if info.reject is not None else None  # runs that read digits
    path = run_dir / REPORT_FILE
    path.write_text(render_html(run_dir, info, metrics, history, per_class=per_class, pens=pens))
    return path


def compare_runs(run_dirs: list[Path | str], out: Path | str) -> list[dict]:
    """Overlay the curves of several runs of one dataset in ``out``; return one summary row per run."""
    infos = {Path(d): read_info(d) for d in run_dirs}
    datasets = {info.source["folder"] if info.source else info.dataset for info in infos.values()}
    if len(datasets) > 1:
        listing = ", ".join(f"{d} ({info.dataset})" for d, info in infos.items())
        raise SettingError(f"cannot compare runs of different datasets: {listing}")
    histories, rows = {}, []
    for run_dir, info in infos.items():
        metrics = read_metrics(run_dir)
        real = real_run_dir(run_dir)  # runs/latest by the name of the run it points to now
        name = real.name if real.name not in histories else str(real)
        histories[name] = read_history(run_dir)
        rows.append(
            {
                "run": name,
                "preset": info.preset,
                "epochs": len(histories[name]),
                "test_acc": metrics.test_acc,
                "test_loss": metrics.test_loss,
                "val_acc": metrics.val_acc,
                "train_seconds": metrics.train_seconds,
            }
        )
    plot_curves(histories, Path(out), f"{datasets.pop()}: {len(rows)} runs")
    return rows
