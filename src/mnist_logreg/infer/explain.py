"""Why the model said what it said: exact per-pixel evidence of a linear model.

For logistic regression, ``logit_c = Σ_i w_ci · x_i + b_c`` exactly, so input i contributes
``w_ci · x_i`` to class c and nothing else does. On the pixels, an input is a pixel; on pixel
pairs, a pair's contribution is shared half and half between its two pixels
(``inputs.fold_to_pixels``), so the maps still sum, with the bias, to the logit exactly. An
evidence map is that contribution as a 28×28 image: red where the ink speaks for the class,
blue where it speaks against it. The map of the predicted class minus that of the runner-up
says why this class and not that one. A run's reject class is an output like the others: its
map shows why the model said "not a digit".
"""

from __future__ import annotations

import io

import numpy as np

from ..images.inputs import SIDE, byte_pixels, feature_map, fold_to_pixels
from ..model.calibration import output_name
from ..model.linear import LinearWeights

MAP_SCALE = 8  # a 28×28 map is drawn 224×224, each pixel a block


def contributions(weights: LinearWeights, seen: np.ndarray) -> np.ndarray:
    """Each pixel's contribution to each class's logit, (classes, 784) float64, for one image as
    the model saw it (input transform applied), (784,) or (28, 28): the logits are
    ``contributions(...).sum(1) + bias``."""
    inputs = feature_map(weights.features, np.asarray(seen, dtype=np.float64).reshape(1, SIDE, SIDE))[0]
    parts = weights.weight.astype(np.float64) * inputs.reshape(1, -1)  # (classes, features)
    return fold_to_pixels(weights.features, parts)


def evidence(weights: LinearWeights, seen: np.ndarray) -> dict:
    """The maps that explain one prediction: ``predicted`` and ``runner_up`` class indices, the
    ``input`` the model saw, the contributions ``for_predicted`` and ``for_runner_up``, their
    ``difference``, each (28, 28), and the ``limit`` of |contribution| the colour scale spans."""
    parts = contributions(weights, seen)
    logits = parts.sum(axis=1) + weights.bias
    predicted, runner_up = (int(k) for k in np.argsort(-logits, kind="stable")[:2])
    maps = {
        "for_predicted": parts[predicted].reshape(SIDE, SIDE),
        "for_runner_up": parts[runner_up].reshape(SIDE, SIDE),
    }
    maps["difference"] = maps["for_predicted"] - maps["for_runner_up"]
    limit = max(float(np.abs(m).max()) for m in maps.values()) or 1.0
    return {
        "predicted": predicted,
        "runner_up": runner_up,
        "logits": logits,
        "input": np.asarray(seen, dtype=np.float64).reshape(SIDE, SIDE),
        **maps,
        "limit": limit,
    }


EVIDENCE_COLOURS = "RdBu_r"  # a diverging map: red for a class, blue against it, white for nothing
PANELS = ("input", "for_predicted", "for_runner_up", "difference")  # the four maps of one explanation, in order


def panel_colours(found: dict, limit: float | None = None) -> dict[str, np.ndarray]:
    """The four panels of ``evidence`` as RGBA images (28, 28, 4) in [0, 1]: the input in grey (light
    ink on black), the maps on EVIDENCE_COLOURS with ±``limit`` at its ends (the maps' own limit,
    unless maps of several images must share one scale). Every drawing of evidence colours it here."""
    from matplotlib import colormaps

    limit = found["limit"] if limit is None else limit
    grey = np.clip(found["input"], 0, 1)
    colours = {"input": np.concatenate([np.repeat(grey[..., None], 3, axis=2), np.ones((SIDE, SIDE, 1))], axis=2)}
    for name in PANELS[1:]:
        colours[name] = colormaps[EVIDENCE_COLOURS](np.clip(found[name] / limit, -1, 1) * 0.5 + 0.5)
    return colours


def panel_captions(found: dict, classes: list[str]) -> dict[str, str]:
    """What each panel of ``evidence`` shows, in words: the captions of the page, the figures and the report."""
    predicted, runner_up = output_name(classes, found["predicted"]), output_name(classes, found["runner_up"])
    return {
        "input": "what the model saw",
        "for_predicted": f"for {predicted}",
        "for_runner_up": f"for {runner_up}",
        "difference": f"{predicted} rather than {runner_up}",
    }


def evidence_pngs(found: dict) -> dict[str, bytes]:
    """The four panels of ``evidence`` as PNGs, each pixel a MAP_SCALE-wide block."""
    from PIL import Image

    pngs = {}
    for name, rgba in panel_colours(found).items():
        buffer = io.BytesIO()
        image = Image.fromarray(byte_pixels(rgba[..., :3]))
        image.resize((SIDE * MAP_SCALE, SIDE * MAP_SCALE), Image.Resampling.NEAREST).save(buffer, "PNG")
        pngs[name] = buffer.getvalue()
    return pngs


def save_evidence_figure(found: dict, classes: list[str], path) -> None:
    """One image's evidence as a figure: what the model saw, and the three maps with a colour bar."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 2.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, 4)
    colours, captions = panel_colours(found), panel_captions(found, classes)
    for ax, name in zip(axes, PANELS, strict=True):
        ax.imshow(colours[name], interpolation="nearest")
        ax.set_title(captions[name], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    scale = ScalarMappable(Normalize(-found["limit"], found["limit"]), EVIDENCE_COLOURS)
    fig.colorbar(scale, ax=list(axes[1:]), shrink=0.9, label="contribution to the logit")
    logits, predicted, runner_up = found["logits"], found["predicted"], found["runner_up"]
    fig.suptitle(
        f"predicted {output_name(classes, predicted)} (logit {logits[predicted]:.2f}), "
        f"runner-up {output_name(classes, runner_up)} (logit {logits[runner_up]:.2f}): red for, blue against"
    )
    fig.savefig(path, facecolor="white")
