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

from .calibration import output_name
from .datasets import DEFAULT_DATA_DIR, DatasetSpec, get_spec
from .errors import SettingError
from .folders import check_can_move
from .idx import read_idx
from .inputs import SIDE, apply_input_transform, feature_count, feature_map, fold_to_pixels, unit_pixels
from .metrics import confusion_matrix, per_class_metrics
from .runs import Epoch, Metrics, RunInfo, read_history, read_info, read_metrics, real_run_dir
from .weights import LinearWeights, load_weights

FIGURES = {
    "curves.png": "Loss and accuracy per epoch",
    "confusion.png": "Test confusion matrix",
    "class-evidence.png": "What each class looks for: its mean evidence over its own test images",
    "weights.png": "The weights themselves, per pixel",
    "misclassified.png": "The test images the model got most confidently wrong",
    "samples.png": "Training images with their labels",
    "evidence.png": "Why: four confident test mistakes, with each pixel's contribution to the two likeliest classes",
    "calibration.png": "Reliability: how sure the model says it is, against how often it is right",
}
# Figures only some runs have, with the input transform they belong to.
TRANSFORM_FIGURES = {"deskew": {"deskew.png": "Deskewing: training images before (top) and after (bottom)"}}
REPORT_FILE = "report.html"
DPI = 100  # figure sizes below are in inches: 8 in × 100 dpi = 800 px wide


@dataclass
class ReportData:
    """What the figures show of the dataset, as numpy arrays: no torch, which would cost a report
    more time to import than it takes to draw."""

    test_images: np.ndarray  # (N, 28, 28) uint8
    test_labels: np.ndarray  # (N,) int
    train_images: np.ndarray  # (M, 28, 28) uint8: the training file, whose first images the samples show
    train_labels: np.ndarray  # (M,)

    @classmethod
    def read(cls, spec: DatasetSpec, data_dir: Path | str) -> ReportData:
        """The dataset's files, checked (and fetched when missing) first."""
        from .fetch import fetch

        raw = fetch(spec, data_dir)
        train_images, train_labels, test_images, test_labels = (read_idx(raw / f.name) for f in spec.files)
        return cls(test_images, test_labels.astype(np.int64), train_images, train_labels.astype(np.int64))

    @classmethod
    def of_folder(cls, info: RunInfo, moved_to: Path | str | None = None) -> ReportData:
        """The images of the folder a run was trained on (from its cache, where it has one), read
        where they are now, ``moved_to``, if they moved."""
        from .folder_data import check_same_files, read_folder
        from .folders import FolderDataset

        folder = FolderDataset.from_json(info.source, info.classes, moved_to)
        arrays = read_folder(folder)
        check_same_files(info.source, arrays.files, folder.path)
        return cls(arrays.test_images, arrays.test_labels, arrays.train_images, arrays.train_labels)

    @classmethod
    def of_splits(cls, splits) -> ReportData:
        """The files a training run already holds in memory (data.Splits)."""
        return cls(
            splits.test_images.numpy(),
            splits.test_labels.numpy(),
            splits.train_images.numpy(),
            splits.train_labels.numpy(),
        )


@dataclass
class TestPredictions:
    labels: np.ndarray  # (N,) true class
    predicted: np.ndarray  # (N,) predicted class
    probabilities: np.ndarray  # (N, outputs), calibrated
    logits: np.ndarray  # (N, outputs)
    images: np.ndarray  # (N, 28, 28) uint8
    seen: np.ndarray  # (N, 784) float32: the images as the model saw them (input transform applied)


def seen_by(weights: LinearWeights, images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) as the model sees them: in [0, 1], input-transformed, flattened (N, 784)."""
    pixels = unit_pixels(images)
    return apply_input_transform(weights.input_transform, pixels).reshape(len(images), -1)


CHUNK = 1000  # images whose features are held at once: 10,000 test images' pixel pairs would be 400 MB


def predict_test_set(weights: LinearWeights, data: ReportData, classes: int) -> TestPredictions:
    """The test images' logits and calibrated probabilities, and the likeliest of the ``classes`` (a reject
    class aside, as metrics.json counts them)."""
    seen, z, p = calibrated(weights, data.test_images)
    return TestPredictions(data.test_labels, p[:, :classes].argmax(1), p, z, data.test_images, seen)


def calibrated(weights: LinearWeights, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) as the model saw them (``seen_by``), their logits and calibrated probabilities."""
    from .calibration import softmax
    from .weights import logits

    seen = seen_by(weights, images)
    z = np.concatenate(
        [
            logits(weights, feature_map(weights.features, seen[start : start + CHUNK]))
            for start in range(0, len(seen), CHUNK)
        ]
    )
    return seen, z, softmax(z, weights.temperature)


PEN_TEST_DIGITS = 300  # test digits redrawn with each pen for the report's table: about a second in all


def pen_scores(weights: LinearWeights, info: RunInfo, predictions: TestPredictions) -> list[dict]:
    """How the run reads the test digits as they are, and redrawn with each pen at parameters its
    training never used (pens.py): per row, the ``set``, the pen's ``share`` and ``trained`` copies
    (None for the digits as they are), and the shares ``accepted`` and ``unsure``, ``right`` among
    the accepted, and ``top_right`` (the likeliest class right, accepted or not)."""
    from .calibration import ACCEPTED, UNSURE, answer_states
    from .pens import PENS, pen_copies

    classes = len(info.classes)

    def scored(name: str, probabilities: np.ndarray, labels: np.ndarray, share=None, trained=None) -> dict:
        states = answer_states(probabilities, classes, weights.threshold)
        right = probabilities[:, :classes].argmax(1) == labels
        taken = states == ACCEPTED
        return {
            "set": name,
            "share": share,
            "trained": trained,
            "accepted": float(taken.mean()),
            "unsure": float((states == UNSURE).mean()),
            "right": float(right[taken].mean()) if taken.any() else None,
            "top_right": float(right.mean()),
        }

    rows = [scored("test digits as they are", predictions.probabilities, predictions.labels)]
    chosen = np.random.default_rng(0).choice(
        len(predictions.labels), min(PEN_TEST_DIGITS, len(predictions.labels)), replace=False
    )
    recorded = info.pens or {}
    for pen in PENS:
        copies, _ = pen_copies(predictions.images[chosen], {pen: 1.0}, 0, layout=info.layout, which="test")
        share = recorded.get("shares", {}).get(pen, 0) / max(sum(recorded.get("shares", {}).values()), 1e-9)
        trained = recorded.get("counts", {}).get(pen)
        rows.append(
            scored(f"redrawn: {pen}", calibrated(weights, copies)[2], predictions.labels[chosen], share, trained)
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _figure(width: float, height: float, layout: str | None = "constrained"):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI, facecolor="white")


def plot_curves(histories: dict[str, list[Epoch]], path: Path, title: str = "Training curves"):
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
    from matplotlib.ticker import MaxNLocator

    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 2.5
    fig.suptitle(title)
    _save(fig, path)
    return fig


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path):
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
    return fig


def class_evidence(weights: LinearWeights, predictions: TestPredictions) -> dict[int, np.ndarray]:
    """Each class's mean evidence over its own test images, (28, 28) per class that has any: the exact
    contribution of each pixel to the class's logit (explain.py), averaged.

    Evidence is linear in the inputs, so the mean map is the weights times the class's mean input,
    folded onto pixels: with the bias it sums to the class's mean logit, as one image's map sums
    to its logit. Unlike the weights of pixel pairs, it shows the shape the class responds to.
    """
    maps = {}
    for k in np.unique(predictions.labels).tolist():
        seen = predictions.seen[predictions.labels == k]
        mean_inputs = (
            sum(  # (features,), summed CHUNK images at a time: pairs are 13 times the pixels
                feature_map(weights.features, seen[start : start + CHUNK].reshape(-1, SIDE, SIDE)).sum(
                    axis=0, dtype=np.float64
                )
                for start in range(0, len(seen), CHUNK)
            )
            / len(seen)
        )
        parts = weights.weight[k].astype(np.float64) * mean_inputs
        maps[k] = fold_to_pixels(weights.features, parts).reshape(SIDE, SIDE)
    return maps


def plot_class_evidence(weights: LinearWeights, predictions: TestPredictions, classes: list[str], path: Path):
    """What each class looks for, readable on any input: ``class_evidence`` as images."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    maps = class_evidence(weights, predictions)
    limit = float(np.percentile(np.abs(list(maps.values())), 99.5)) or 1.0
    norm = Normalize(-limit, limit)
    cells = [colormaps["RdBu_r"](norm(m)) for m in maps.values()]
    title = "Mean evidence per class over its test images: red speaks for the class, blue against it"
    fig = _mosaic(cells, [classes[k] for k in maps], title, columns=5, cell_inches=1.7, font=10, bar=True)
    _colour_bar(fig, norm, "mean contribution to the class's logit", extend="both")
    _save(fig, path)
    return fig


def plot_weights(weights: LinearWeights, classes: list[str], path: Path):
    """Each output's weight per pixel as a 28×28 image on a diverging map centred on zero: on pixel
    pairs, a pixel's own weight plus half of every pair weight it takes part in.

    The colour scale stops at the 99th percentile of |weight|: a few border pixels that are
    almost never inked can take large weights, and a scale set by them would wash out the
    digit-shaped patterns that carry the decisions.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    weight = fold_to_pixels(weights.features, weights.weight)
    limit = float(np.percentile(np.abs(weight), 99)) or 1.0
    norm = Normalize(-limit, limit)
    cells = [colormaps["RdBu_r"](norm(row.reshape(SIDE, SIDE))) for row in weight]
    names = [output_name(classes, k) for k in range(len(weight))]  # "not a digit" last, for a run that rejects
    title = "Weights per output: red pixels count for it when inked, blue against it"
    fig = _mosaic(cells, names, title, columns=5, cell_inches=1.7, font=10, bar=True)
    _colour_bar(fig, norm, "weight (red: ink here raises the score)", extend="both")
    _save(fig, path)
    return fig


TITLE_INCHES = 0.45  # the figure's title, above a mosaic
BAR_INCHES = 0.95  # below a mosaic, for a horizontal colour bar, its ticks and its label


def _text_inches(text: str, font: float) -> float:
    """How wide ``text`` is drawn at ``font`` points, in inches (its widest line)."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(10, 10, 72)  # at 72 dpi a pixel is a point
    properties = FontProperties(size=font)
    widths = [renderer.get_text_width_height_descent(line, properties, ismath=False)[0] for line in text.split("\n")]
    return max(widths) / 72


def _mosaic(
    cells: list[np.ndarray],
    titles: list[str],
    title: str,
    columns: int,
    *,
    colors: list[str] | None = None,
    cell_inches: float = 1.25,
    font: int = 8,
    bar: bool = False,
):
    """A figure of images in a grid with a title over each, drawn as one picture in one axes.

    One axes per image costs matplotlib tens of milliseconds each to build and lay out; one
    mosaic costs about as much as a single image. ``cells`` are (28, 28) greys in [0, 255] or
    (28, 28, 4) RGBA in [0, 1]; each is ``cell_inches`` wide, or wider where a title needs the
    room, and the figure is as wide as the grid or its ``title``, whichever is wider. No more
    columns than cells: a grid of three is not drawn five wide. ``bar`` leaves BAR_INCHES free
    below the grid for ``_colour_bar``.
    """
    columns = max(1, min(columns, len(cells)))
    rows = max(1, -(-len(cells) // columns))
    gap = 4  # mosaic pixels between cells
    inch = cell_inches / (SIDE + gap)  # inches per mosaic pixel: the images' scale
    widest = max((_text_inches(t, font) for t in titles), default=0.0) + 0.1  # a little air between titles
    lines = max(t.count("\n") + 1 for t in titles) if titles else 1
    header = round(lines * font * 1.35 / 72 / inch) + gap  # the titles' rows, in mosaic pixels
    cell_w, cell_h = max(SIDE + gap, int(np.ceil(widest / inch))), SIDE + header
    canvas = np.ones((rows * cell_h, columns * cell_w, 4))  # white
    for i, cell in enumerate(cells):
        row, column = divmod(i, columns)
        rgba = cell.copy() if cell.ndim == 3 else np.repeat((np.clip(cell, 0, 255) / 255)[..., None], 4, axis=2)
        rgba[..., 3] = 1
        top, left = row * cell_h + header, column * cell_w + (cell_w - SIDE) // 2
        canvas[top : top + SIDE, left : left + SIDE] = rgba
    grid_w, grid_h = columns * cell_w * inch, rows * cell_h * inch
    width = max(grid_w, _text_inches(title, 12) + 0.4)  # the figure's title at matplotlib's 12 points
    below = BAR_INCHES if bar else 0.0
    height = grid_h + TITLE_INCHES + below
    fig = _figure(width, height, layout=None)
    ax = fig.add_axes(((width - grid_w) / 2 / width, below / height, grid_w / width, grid_h / height))
    ax.imshow(canvas, interpolation="nearest", aspect="equal")
    ax.set_axis_off()
    for i, text in enumerate(titles[: len(cells)]):
        row, column = divmod(i, columns)
        x, y = column * cell_w + cell_w / 2, row * cell_h + header - gap / 2
        ax.text(x, y, text, ha="center", va="bottom", fontsize=font, color=colors[i] if colors else "black")
    fig.suptitle(title, y=1 - 0.12 / height, va="top")
    return fig


def _colour_bar(fig, norm, label: str, **options) -> None:
    """A horizontal colour bar for cells coloured with RdBu_r over ``norm``, in the room a mosaic left
    below its grid (``bar=True``): laid along the figure's width, its label never runs past a short figure."""
    from matplotlib.cm import ScalarMappable

    width, height = fig.get_size_inches()
    bar_w = min(width * 0.6, 4.0)
    bar = fig.add_axes(((width - bar_w) / 2 / width, 0.55 / height, bar_w / width, 0.14 / height))
    fig.colorbar(ScalarMappable(norm, "RdBu_r"), cax=bar, orientation="horizontal", label=label, **options)


def _image_grid(
    images: list[np.ndarray],
    titles: list[str],
    path: Path,
    title: str,
    *,
    columns: int = 8,
    colors: list[str] | None = None,
):
    fig = _mosaic(images, titles, title, columns, colors=colors)
    _save(fig, path)
    return fig


def plot_misclassified(predictions: TestPredictions, classes: list[str], path: Path, count: int = 24):
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    confidence = predictions.probabilities[wrong, predictions.predicted[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")][:count]
    images = [predictions.images[i] for i in chosen]
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
        return fig
    title = f"Most confidently wrong: {len(chosen)} of {len(wrong)} test errors"
    return _image_grid(images, titles, path, title, colors=["firebrick"] * len(images))


def plot_mistakes_evidence(
    weights: LinearWeights, predictions: TestPredictions, classes: list[str], path: Path, count: int = 4
):
    """The most confidently wrong test images, each with what the model saw and its evidence maps."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    from .explain import evidence

    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    chosen = wrong[np.argsort(-predictions.probabilities[wrong, predictions.predicted[wrong]], kind="stable")][:count]
    if not len(chosen):
        fig = _figure(9, 2.7)
        fig.text(0.5, 0.5, "No test errors to explain.", ha="center", va="center", fontsize=14)
        _save(fig, path)
        return fig
    found = [evidence(weights, predictions.seen[i]) for i in chosen]
    limit = max(f["limit"] for f in found)  # one scale for every map, so that they compare
    norm = Normalize(-limit, limit)
    cells, titles = [], []
    for i, f in zip(chosen, found, strict=True):
        predicted, runner_up = output_name(classes, f["predicted"]), output_name(classes, f["runner_up"])
        cells.append(np.clip(f["input"], 0, 1) * 255)
        cells += [colormaps["RdBu_r"](norm(f[name])) for name in ("for_predicted", "for_runner_up", "difference")]
        titles += [
            f"true {classes[predictions.labels[i]]}\nwhat the model saw",
            f"evidence\nfor {predicted}",
            f"evidence\nfor {runner_up}",
            f"{predicted}\nrather than {runner_up}",
        ]
    title = "Why the model was wrong: evidence for its answer, for the runner-up, and their difference"
    fig = _mosaic(cells, titles, title, columns=4, cell_inches=1.9, font=9, bar=True)
    _colour_bar(fig, norm, "contribution to the logit (red: for)")
    _save(fig, path)
    return fig


def plot_reliability(weights: LinearWeights, predictions: TestPredictions, path: Path):
    """The reliability diagram of the test split, before and after calibration: per confidence bin,
    the share of images that were right; a calibrated model's bars meet the diagonal."""
    from .calibration import expected_calibration_error, reliability, softmax

    fig = _figure(10, 4)
    for ax, temperature, name in zip(fig.subplots(1, 2), (1.0, weights.temperature), ("before", "after"), strict=True):
        p = softmax(predictions.logits, temperature)
        rows = [row for row in reliability(p, predictions.labels) if row["count"]]
        ece = expected_calibration_error(p, predictions.labels)
        ax.bar(
            [(row["low"] + row["high"]) / 2 for row in rows],
            [row["accuracy"] for row in rows],
            width=rows[0]["high"] - rows[0]["low"],
            edgecolor="black",
            label="accuracy in the bin",
        )
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.set_title(f"{name} calibration (T = {temperature:.3f}): ECE {ece:.4f}")
        ax.set_xlabel("confidence (largest probability)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left")
    _save(fig, path)
    return fig


def plot_samples(data: ReportData, classes: list[str], path: Path, count: int = 24):
    """The first images of the training file with their labels, as the lesson shows ``dataset[0]``."""
    return _image_grid(
        list(data.train_images[:count]),
        [classes[int(label)] for label in data.train_labels[:count]],
        path,
        "Training images and their labels",
    )


def plot_transformed(data: ReportData, input_transform: str, path: Path, count: int = 8):
    """The first training images as they are (top row) and as the model sees them (bottom row)."""
    before = unit_pixels(data.train_images[:count])  # (count, 28, 28)
    after = apply_input_transform(input_transform, before)
    images = [image * 255 for image in np.concatenate([before, after])]
    titles = ["as drawn"] * count + [input_transform] * count
    return _image_grid(images, titles, path, f"Input transform '{input_transform}': before and after", columns=count)


def figures_of(info: RunInfo) -> dict[str, str]:
    """The figures a run's report shows: file name -> caption."""
    return {**FIGURES, **TRANSFORM_FIGURES.get(info.input_transform, {})}


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


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
    check_can_move(info.source, moved_to, info.dataset)
    history = read_history(run_dir)
    metrics = read_metrics(run_dir)
    if splits is not None:
        data = ReportData.of_splits(splits)
    elif dataset is None and info.source is not None:
        data = ReportData.of_folder(info, moved_to)
    else:
        data = ReportData.read(dataset if dataset is not None else get_spec(info.dataset), data_dir)
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


CLASS_EVIDENCE_NOTE = (
    "Each map is the average, over the test images of its class, of each pixel's exact contribution to that "
    "class's logit (the weight times the input; on pixel pairs, a pair's share split between its two pixels): "
    "with the bias it sums to the class's mean logit. It shows what the class responds to in real images. The "
    "next figure shows the weights themselves, which on pixel pairs are hard to read as shapes."
)
PAIRS_NOTE = (
    "On pixel pairs, each pixel's weight here is its own plus half of every pair weight it takes part in: a pair "
    "weight says how much ink at both of two neighbouring pixels counts for the class (a stroke), which ink at "
    "either pixel alone (a speck) does not."
)


def describe_inputs(info: RunInfo) -> str:
    if info.features == "pixels":
        return f"{info.input_size} pixels"
    return f"{feature_count(info.features)} inputs ({info.input_size} pixels and the pairs of neighbouring pixels)"


def describe_reject(info: RunInfo) -> str:
    if info.reject is None:
        return ""
    sources = ", ".join(f"{count} {source}" for source, count in info.reject["outliers"].items())
    return f' and one more, "{info.reject["class"]}", learnt from outliers ({sources})'


PENS_NOTE = (
    "The test digits, and {count} of them redrawn with each pen at parameters the training never used "
    "(pens.py), read by the run's rule: accepted, unsure (a digit, below the threshold) or not a digit. "
    "'right' counts among the accepted; 'top class right' among all. {trained}"
)


def pens_section(info: RunInfo, rows: list[dict] | None) -> str:
    """The report's table of the run on each pen."""
    if not rows:
        return ""
    trained = (
        f"The run trained on {info.pens['copies_per_digit']} copy per digit, of each pen in the share shown."
        if info.pens
        else "The run trained on MNIST's own pen only."
    )
    table = [
        [
            row["set"],
            "—" if row["share"] is None else f"{row['share']:.2f} ({row['trained'] or 0} copies)",
            _number(row["accepted"], 3),
            _number(row["unsure"], 3),
            _number(row["right"], 3),
            _number(row["top_right"], 3),
        ]
        for row in rows
    ]
    header = ["test set", "share of the copies trained on", "accepted", "unsure", "right", "top class right"]
    note = PENS_NOTE.format(count=PEN_TEST_DIGITS, trained=trained)
    return f"<h2>Pens</h2><p>{html.escape(note)}</p>{_table(header, table)}"


def _settings_rows(info: RunInfo) -> list[list]:
    return [
        ["dataset", info.dataset],
        ["preset", info.preset],
        *([k, v] for k, v in info.recipe.items()),
        ["splits (train / val / test)", " / ".join(str(v) for v in info.splits.values())],
        ["loader", info.loader],
        ["device", info.device],
        ["processes (torchrun world size)", info.world_size],
        ["versions", ", ".join(f"{k} {v}" for k, v in info.versions.items())],
        ["created", info.created or "not recorded"],
    ]


def _headline_rows(info: RunInfo, metrics: Metrics, history: list[Epoch]) -> list[list]:
    headline = [
        ["test accuracy", _number(metrics.test_acc)],
        ["test loss", _number(metrics.test_loss)],
        ["validation accuracy", _number(metrics.val_acc)],
        ["validation loss", _number(metrics.val_loss)],
        ["training time", f"{metrics.train_seconds:.2f} s ({len(history)} epochs)"],
    ]
    if metrics.calibration is not None:
        calibration = metrics.calibration
        headline += [
            ["temperature (fitted on validation)", _number(info.temperature)],
            [
                "test ECE before / after calibration",
                f"{_number(calibration['ece_before'])} / {_number(calibration['ece_after'])}",
            ],
        ]
    if metrics.reject is not None:
        reject = metrics.reject
        headline += [
            ["reject threshold (likeliest digit's probability)", _number(info.threshold)],
            ["test digits accepted", _number(reject["test_accepted"])],
            ["test accuracy on the accepted", _number(reject["test_acc_accepted"])],
        ]
    return headline


def _figures_html(run_dir: Path, info: RunInfo) -> str:
    """Each figure of the run under its caption (and its note, where one helps), inlined as a data URI."""
    notes = {"class-evidence.png": CLASS_EVIDENCE_NOTE}
    if info.features != "pixels":
        notes["weights.png"] = PAIRS_NOTE
    return "".join(
        f"<h2>{html.escape(caption)}</h2>"
        + (f"<p>{html.escape(notes[name])}</p>" if name in notes else "")
        + f'<img alt="{html.escape(caption)}" src="{_data_uri(run_dir / name)}">'
        for name, caption in figures_of(info).items()
    )


def render_html(
    run_dir: Path,
    info: RunInfo,
    metrics: Metrics,
    history: list[Epoch],
    *,
    per_class: list[dict],
    pens: list[dict] | None = None,
) -> str:
    """report.html: the metrics and settings, the per-class table, how each pen reads, every figure
    (inlined, so the page is one file) and the epochs."""
    headline, settings = _headline_rows(info, metrics, history), _settings_rows(info)
    per_class = [
        [r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]] for r in per_class
    ]
    epochs = [
        [h.epoch, _number(h.train_loss), _number(h.val_loss), _number(h.val_acc), f"{h.seconds:.3f}"] for h in history
    ]
    figures = _figures_html(run_dir, info)
    title = f"mnist-logreg run: {info.dataset}, {info.preset} preset"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Run folder <code>{html.escape(str(real_run_dir(run_dir)))}</code>. Logistic regression: one linear layer, {html.escape(describe_inputs(info))} → {len(info.classes)} classes{html.escape(describe_reject(info))}.</p>
<div class="metrics"><div><h2>Metrics</h2>{_table(["metric", "value"], headline)}</div>
<div><h2>Settings</h2>{_table(["setting", "value"], settings)}</div></div>
<h2>Per class (test set)</h2>{_table(["class", "precision", "recall", "F1", "images"], per_class)}
{pens_section(info, pens)}
{figures}
<h2>Per epoch</h2>{_table(["epoch", "train loss", "val loss", "val accuracy", "seconds"], epochs)}
</body></html>
"""


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
