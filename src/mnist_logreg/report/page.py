"""The report's page: the run's numbers as HTML tables, and its figures inlined, filled into the
template page.html beside this file (string.Template: every value is escaped or built here).
"""

from __future__ import annotations

import base64
import html
from importlib import resources
from pathlib import Path
from string import Template

from ..images.inputs import feature_count
from ..model.run_folder import Epoch, Metrics, RunInfo, real_run_dir
from .figures import figures_of
from .scores import PEN_TEST_DIGITS

PAGE = Template(resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8"))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
    "(data/pens.py), read by the run's rule: accepted, unsure (a digit, below the threshold) or not a digit. "
    "'right' counts among the accepted; 'top class right' among all. {trained}"
)


def pens_section(info: RunInfo, rows: list[dict] | None) -> str:
    """The report's table of the run on each pen."""
    if not rows:
        return ""
    trained = (
        f"The run trained on copies of {info.pens['copies_per_digit']:.0%} of its digits, each pen in the share shown."
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


def tuned_section(info: RunInfo) -> str:
    """The report's table of a tuned run (``mnist-logreg tune``): the writer's held-out images and the
    test split, read before and after tuning."""
    tuned = info.tuned_from
    if not tuned or "before" not in tuned:
        return ""
    writer = tuned["writer"]
    rows = [
        [
            f"{name} ({tuned['before'][key]['images']} images)",
            f"{_number(tuned['before'][key]['acc'])} → {_number(tuned['after'][key]['acc'])}",
            f"{_number(tuned['before'][key]['accepted'], 3)} → {_number(tuned['after'][key]['accepted'], 3)}",
        ]
        for key, name in (("writer", "the writer's held-out images"), ("test", "the test split"))
    ]
    weight = tuned.get("writer_weight_reached")  # recorded since the weight may grow
    weighing = f" (a writer's image weighing {weight:g} of a replayed one)" if weight is not None else ""
    note = (
        f"Tuned from {tuned['run']} on {writer['train']} images of {writer['folder']}, each step replaying "
        f"{tuned['replay']} of the run's training digits per image{weighing}, the weights held near the run's."
    )
    header = ["images", "likeliest class right, before → after", "accepted, before → after"]
    return f"<h2>Tuned on one writer's hand</h2><p>{html.escape(note)}</p>{_table(header, rows)}"


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
    (inlined, so the page is one file) and the epochs, filled into page.html."""
    per_class = [
        [r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]] for r in per_class
    ]
    epochs = [
        [h.epoch, _number(h.train_loss), _number(h.val_loss), _number(h.val_acc), f"{h.seconds:.3f}"] for h in history
    ]
    title = f"mnist-logreg run: {info.dataset}, {info.preset} preset"
    return PAGE.substitute(
        title=html.escape(title),
        run_folder=html.escape(str(real_run_dir(run_dir))),
        inputs=html.escape(describe_inputs(info)),
        classes=len(info.classes),
        reject=html.escape(describe_reject(info)),
        metrics=_table(["metric", "value"], _headline_rows(info, metrics, history)),
        settings=_table(["setting", "value"], _settings_rows(info)),
        per_class=_table(["class", "precision", "recall", "F1", "images"], per_class),
        pens=tuned_section(info) + pens_section(info, pens),
        figures=_figures_html(run_dir, info),
        epochs=_table(["epoch", "train loss", "val loss", "val accuracy", "seconds"], epochs),
    )
