"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no display, no global
pyplot state), so that reports can be written from servers, tests and CI alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.arrays import DataArrays
from ..images.inputs import SIDE, apply_input_transform, fold_to_pixels, unit_pixels
from ..infer.explain import EVIDENCE_COLOURS, PANELS, evidence, panel_captions, panel_colours
from ..model.calibration import output_name
from ..model.linear import LinearWeights
from ..model.run_folder import Epoch, RunInfo
from .scores import TestPredictions, class_evidence

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


TRANSFORM_FIGURES = {"deskew": {"deskew.png": "Deskewing: training images before (top) and after (bottom)"}}


DPI = 100  # figure sizes below are in inches: 8 in × 100 dpi = 800 px wide


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


def plot_class_evidence(weights: LinearWeights, predictions: TestPredictions, classes: list[str], path: Path):
    """What each class looks for, readable on any input: ``class_evidence`` as images."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    maps = class_evidence(weights, predictions)
    limit = float(np.percentile(np.abs(list(maps.values())), 99.5)) or 1.0
    norm = Normalize(-limit, limit)
    cells = [colormaps[EVIDENCE_COLOURS](norm(m)) for m in maps.values()]
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
    cells = [colormaps[EVIDENCE_COLOURS](norm(row.reshape(SIDE, SIDE))) for row in weight]
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
    """A horizontal colour bar for cells coloured with EVIDENCE_COLOURS over ``norm``, in the room a mosaic left
    below its grid (``bar=True``): laid along the figure's width, its label never runs past a short figure."""
    from matplotlib.cm import ScalarMappable

    width, height = fig.get_size_inches()
    bar_w = min(width * 0.6, 4.0)
    bar = fig.add_axes(((width - bar_w) / 2 / width, 0.55 / height, bar_w / width, 0.14 / height))
    fig.colorbar(ScalarMappable(norm, EVIDENCE_COLOURS), cax=bar, orientation="horizontal", label=label, **options)


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
    from matplotlib.colors import Normalize

    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    chosen = wrong[np.argsort(-predictions.probabilities[wrong, predictions.predicted[wrong]], kind="stable")][:count]
    if not len(chosen):
        fig = _figure(9, 2.7)
        fig.text(0.5, 0.5, "No test errors to explain.", ha="center", va="center", fontsize=14)
        _save(fig, path)
        return fig
    found = [evidence(weights, predictions.seen[i]) for i in chosen]
    limit = max(f["limit"] for f in found)  # one scale for every map, so that they compare
    cells, titles = [], []
    for i, f in zip(chosen, found, strict=True):
        colours, captions = panel_colours(f, limit), panel_captions(f, classes)
        cells += [colours[name] for name in PANELS]
        titles += [f"true {classes[predictions.labels[i]]}\n{captions['input']}"]
        titles += [f"evidence\n{captions[name]}" if name != "difference" else captions[name] for name in PANELS[1:]]
    title = "Why the model was wrong: evidence for its answer, for the runner-up, and their difference"
    fig = _mosaic(cells, titles, title, columns=4, cell_inches=1.9, font=9, bar=True)
    _colour_bar(fig, Normalize(-limit, limit), "contribution to the logit (red: for)")
    _save(fig, path)
    return fig


def plot_reliability(weights: LinearWeights, predictions: TestPredictions, path: Path):
    """The reliability diagram of the test split, before and after calibration: per confidence bin,
    the share of images that were right; a calibrated model's bars meet the diagonal."""
    from ..model.calibration import expected_calibration_error, reliability, softmax

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


def plot_samples(data: DataArrays, classes: list[str], path: Path, count: int = 24):
    """The first images of the training file with their labels, as the lesson shows ``dataset[0]``."""
    return _image_grid(
        list(data.train_images[:count]),
        [classes[int(label)] for label in data.train_labels[:count]],
        path,
        "Training images and their labels",
    )


def plot_transformed(data: DataArrays, input_transform: str, path: Path, count: int = 8):
    """The first training images as they are (top row) and as the model sees them (bottom row)."""
    before = unit_pixels(data.train_images[:count])  # (count, 28, 28)
    after = apply_input_transform(input_transform, before)
    images = [image * 255 for image in np.concatenate([before, after])]
    titles = ["as drawn"] * count + [input_transform] * count
    return _image_grid(images, titles, path, f"Input transform '{input_transform}': before and after", columns=count)


def figures_of(info: RunInfo) -> dict[str, str]:
    """The figures a run's report shows: file name -> caption."""
    return {**FIGURES, **TRANSFORM_FIGURES.get(info.input_transform, {})}
