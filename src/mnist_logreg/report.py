"""What a run learned, shown: figures, per-class metrics and one self-contained HTML report.

Figures are drawn with matplotlib's object API on the Agg canvas (no display, no global
pyplot state), so reports can be written from servers, tests and CI alike.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import Splits, to_float_pixels
from .datasets import DEFAULT_DATA_DIR, DatasetSpec
from .metrics import confusion_matrix, per_class_metrics
from .preprocess import apply_input_transform
from .runs import Epoch, Metrics, RunInfo, load_run, read_history, read_info, read_metrics

FIGURES = {
    "curves.png": "Loss and accuracy per epoch",
    "confusion.png": "Test confusion matrix",
    "weights.png": "What each class looks for: the weight rows as images",
    "misclassified.png": "The test images the model got most confidently wrong",
    "samples.png": "Training images with their labels",
    "evidence.png": "Why: four confident test mistakes, with each pixel's contribution to the two likeliest classes",
}
# Figures only some runs have, with the input transform they belong to.
TRANSFORM_FIGURES = {"deskew": {"deskew.png": "Deskewing: training images before (top) and after (bottom)"}}
REPORT_FILE = "report.html"
DPI = 100  # figure sizes below are in inches: 8 in × 100 dpi = 800 px wide


@dataclass
class TestPredictions:
    labels: np.ndarray  # (N,) true class
    predicted: np.ndarray  # (N,) predicted class
    probabilities: np.ndarray  # (N, C)
    images: torch.Tensor  # (N, 1, 28, 28) uint8


def predict_split(model, splits: Splits, split: str = "test") -> TestPredictions:
    images, labels = splits.tensors(split)
    with torch.no_grad():
        probabilities = torch.cat([model.predict_proba(to_float_pixels(chunk)) for chunk in images.split(2000)])
    return TestPredictions(labels.numpy(), probabilities.argmax(1).numpy(), probabilities.numpy(), images)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI, facecolor="white")


def plot_curves(histories: dict[str, list[Epoch]], path: Path, title: str = "Training curves") -> None:
    """Loss (train and validation) and validation accuracy per epoch, one line per run."""
    fig = _figure(10, 4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for name, history in histories.items():
        epochs = [h.epoch for h in history]
        label = f"{name} " if len(histories) > 1 else ""
        line = loss_ax.plot(epochs, [h.val_loss for h in history], "-o", markersize=3, label=f"{label}validation")[0]
        loss_ax.plot(epochs, [h.train_loss for h in history], "--", color=line.get_color(), label=f"{label}training")
        acc_ax.plot(
            epochs, [h.val_acc for h in history], "-o", markersize=3, color=line.get_color(), label=name or None
        )
    loss_ax.set(title="Loss vs. No. of epochs", xlabel="epoch", ylabel="cross-entropy loss")
    acc_ax.set(title="Accuracy vs. No. of epochs", xlabel="epoch", ylabel="validation accuracy")
    loss_ax.legend(fontsize=8)
    if len(histories) > 1:
        acc_ax.legend(fontsize=8)
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path) -> None:
    fig = _figure(8, 7)
    ax = fig.subplots()
    shown = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(shown, ax=ax, shrink=0.8, label="images")
    threshold = confusion.max() / 2
    for (row, col), count in np.ndenumerate(confusion):
        ax.text(
            col, row, str(count), ha="center", va="center", fontsize=8, color="white" if count > threshold else "black"
        )
    ticks = range(len(classes))
    ax.set_xticks(
        ticks,
        classes,
        rotation=45 if max(map(len, classes)) > 2 else 0,
        ha="right" if max(map(len, classes)) > 2 else "center",
    )
    ax.set_yticks(ticks, classes)
    accuracy = np.trace(confusion) / confusion.sum()
    ax.set(
        xlabel="predicted class",
        ylabel="true class",
        title=f"Test confusion matrix ({confusion.sum()} images, accuracy {accuracy:.4f})",
    )
    _save(fig, path)


def plot_weights(weight: np.ndarray, classes: list[str], path: Path) -> None:
    """Each class's weight row as a 28×28 image on a diverging map centred on zero.

    The colour scale stops at the 99th percentile of |weight|: a few border pixels that are
    almost never inked can take large weights, and a scale set by them would wash out the
    digit-shaped patterns that carry the decisions.
    """
    fig = _figure(10, 4.6)
    axes = fig.subplots(2, 5)
    limit = float(np.percentile(np.abs(weight), 99)) or 1.0
    for k, ax in enumerate(axes.flat):
        shown = ax.imshow(weight[k].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(classes[k], fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes, shrink=0.8, extend="both", label="weight (red: ink here raises the score)")
    fig.suptitle("Weights per class: red pixels count for the class, blue against it")
    _save(fig, path)


def _image_grid(
    images: list[np.ndarray],
    titles: list[str],
    path: Path,
    title: str,
    columns: int = 8,
    colors: list[str] | None = None,
) -> None:
    rows = max(1, -(-len(images) // columns))
    fig = _figure(columns * 1.25, rows * 1.45 + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, columns)).reshape(-1)
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(images):
            ax.axis("off")
            continue
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(titles[i], fontsize=8, color=(colors[i] if colors else "black"))
    fig.suptitle(title)
    _save(fig, path)


def plot_misclassified(predictions: TestPredictions, classes: list[str], path: Path, count: int = 24) -> None:
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    confidence = predictions.probabilities[wrong, predictions.predicted[wrong]]
    chosen = wrong[np.argsort(-confidence)][:count]
    images = [predictions.images[i, 0].numpy() for i in chosen]
    titles = [
        f"true {classes[predictions.labels[i]]}\npred {classes[predictions.predicted[i]]} "
        f"({predictions.probabilities[i, predictions.predicted[i]]:.2f})"
        for i in chosen
    ]
    if not len(wrong):
        fig = _figure(8, 2)
        fig.text(
            0.5,
            0.5,
            "No test errors: every test image was classified correctly.",
            ha="center",
            va="center",
            fontsize=14,
        )
        _save(fig, path)
        return
    title = f"Most confidently wrong: {len(chosen)} of {len(wrong)} test errors"
    _image_grid(images, titles, path, title, colors=["firebrick"] * len(images))


def plot_mistakes_evidence(model, predictions: TestPredictions, classes: list[str], path: Path, count: int = 4) -> None:
    """The most confidently wrong test images, each with what the model saw and its evidence maps."""
    from .explain import draw_evidence, evidence
    from .predict import as_weights

    weights = as_weights(model)
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    chosen = wrong[np.argsort(-predictions.probabilities[wrong, predictions.predicted[wrong]])][:count]
    fig = _figure(9, 2.3 * max(1, len(chosen)) + 0.4)
    if not len(chosen):
        fig.text(0.5, 0.5, "No test errors to explain.", ha="center", va="center", fontsize=14)
        _save(fig, path)
        return
    axes = np.atleast_2d(fig.subplots(len(chosen), 4))
    with torch.no_grad():
        seen = model.seen(to_float_pixels(predictions.images[torch.as_tensor(chosen)])).numpy()  # (count, 784)
    for row, i in zip(axes, range(len(chosen))):
        shown = draw_evidence(
            row, evidence(weights, seen[i]), classes, title=f"true {classes[predictions.labels[chosen[i]]]}: "
        )
    fig.colorbar(shown, ax=axes[:, 1:].ravel().tolist(), shrink=0.6, label="contribution to the logit (red: for)")
    fig.suptitle("Why the model was wrong: evidence for its answer, for the runner-up, and their difference")
    _save(fig, path)


def plot_samples(splits: Splits, classes: list[str], path: Path, count: int = 24) -> None:
    shown = splits.train_indices[:count]  # the first training images, without copying the whole split
    _image_grid(
        [splits.train_images[i].numpy() for i in shown],
        [classes[int(splits.train_labels[i])] for i in shown],
        path,
        "Training images and their labels",
    )


def plot_transformed(splits: Splits, input_transform: str, path: Path, count: int = 8) -> None:
    """The first training images as they are (top row) and as the model sees them (bottom row)."""
    shown = torch.as_tensor(splits.train_indices[:count])
    before = to_float_pixels(splits.train_images[shown])  # (count, 28, 28)
    after = apply_input_transform(input_transform, before)
    images = [(image.numpy() * 255) for image in torch.cat([before, after])]
    titles = ["as drawn"] * count + [input_transform] * count
    _image_grid(images, titles, path, f"Input transform '{input_transform}': before and after", columns=count)


def figures_of(info: RunInfo) -> dict[str, str]:
    """The figures a run's report shows: file name -> caption."""
    return {**FIGURES, **TRANSFORM_FIGURES.get(info.input_transform, {})}


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


def write_report(
    run_dir: Path | str,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    dataset: DatasetSpec | None = None,
    splits: Splits | None = None,
) -> Path:
    """Write the figures, per-class metrics and ``report.html`` into ``run_dir``; return the HTML path.

    ``dataset`` overrides the dataset named in model.json (for datasets outside the table);
    ``splits`` passes the run's data when the caller already holds it (right after training).
    """
    from .pipeline import load_run_splits

    run_dir = Path(run_dir)
    model, info = load_run(run_dir)
    history = read_history(run_dir)
    metrics = read_metrics(run_dir)
    if splits is None:
        splits = load_run_splits(info, data_dir, dataset)
    classes = info.classes

    # The figures' own count of the test predictions (metrics.json holds the same for new runs;
    # runs from before it was written at training time lack it).
    predictions = predict_split(model, splits, "test")
    confusion = confusion_matrix(predictions.labels, predictions.predicted, len(classes))
    per_class = per_class_metrics(confusion, classes)

    plot_curves({"": history}, run_dir / "curves.png", f"{info.dataset} — {info.preset} preset")
    plot_confusion(confusion, classes, run_dir / "confusion.png")
    plot_weights(model.linear.weight.detach().cpu().numpy(), classes, run_dir / "weights.png")
    plot_misclassified(predictions, classes, run_dir / "misclassified.png")
    plot_samples(splits, classes, run_dir / "samples.png")
    plot_mistakes_evidence(model, predictions, classes, run_dir / "evidence.png")
    if info.input_transform != "none":
        plot_transformed(splits, info.input_transform, run_dir / "deskew.png")

    path = run_dir / REPORT_FILE
    path.write_text(render_html(run_dir, info, metrics, per_class, history))
    return path


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1040px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
th { background: #f4f4f4; } td:not(:first-child) { font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.metrics { display: flex; gap: 2em; flex-wrap: wrap; }
"""


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"  # a loss that was not finite is stored as null


def render_html(run_dir: Path, info: RunInfo, metrics: Metrics, per_class: list[dict], history: list[Epoch]) -> str:
    settings = [["dataset", info.dataset], ["preset", info.preset]]
    settings += [[k, v] for k, v in info.hyperparameters.items()]
    settings += [
        ["splits (train / val / test)", " / ".join(str(v) for v in info.splits.values())],
        ["loader", info.loader],
        ["device", info.device],
        ["processes (torchrun world size)", info.world_size],
        ["versions", ", ".join(f"{k} {v}" for k, v in info.versions.items())],
        ["created", info.created],
    ]
    headline = [
        ["test accuracy", _number(metrics.test_acc)],
        ["test loss", _number(metrics.test_loss)],
        ["validation accuracy", _number(metrics.val_acc)],
        ["validation loss", _number(metrics.val_loss)],
        ["training time", f"{metrics.train_seconds:.2f} s ({len(history)} epochs)"],
    ]
    per_class = [
        [r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]] for r in per_class
    ]
    epochs = [
        [h.epoch, _number(h.train_loss), _number(h.val_loss), _number(h.val_acc), f"{h.seconds:.3f}"] for h in history
    ]
    figures = "".join(
        f'<h2>{html.escape(caption)}</h2><img alt="{html.escape(caption)}" src="{_data_uri(run_dir / name)}">'
        for name, caption in figures_of(info).items()
    )
    title = f"mnist-logreg run: {info.dataset}, {info.preset} preset"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Run folder <code>{html.escape(str(run_dir))}</code>. Logistic regression: one linear layer, {info.input_size} pixels → {len(info.classes)} classes.</p>
<div class="metrics"><div><h2>Metrics</h2>{_table(["metric", "value"], headline)}</div>
<div><h2>Settings</h2>{_table(["setting", "value"], settings)}</div></div>
<h2>Per class (test set)</h2>{_table(["class", "precision", "recall", "F1", "images"], per_class)}
{figures}
<h2>Per epoch</h2>{_table(["epoch", "train loss", "val loss", "val accuracy", "seconds"], epochs)}
</body></html>
"""


def compare_runs(run_dirs: list[Path | str], out: Path | str) -> list[dict]:
    """Overlay the curves of several runs of one dataset in ``out``; return one summary row per run."""
    infos = {Path(d): read_info(d) for d in run_dirs}
    datasets = {info.dataset for info in infos.values()}
    if len(datasets) > 1:
        listing = ", ".join(f"{d} ({info.dataset})" for d, info in infos.items())
        raise ValueError(f"cannot compare runs of different datasets: {listing}")
    histories, rows = {}, []
    for run_dir, info in infos.items():
        metrics = read_metrics(run_dir)
        name = run_dir.name
        if name in histories:
            name = str(run_dir)
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
