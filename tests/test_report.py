"""Figures, per-class metrics and the HTML report, on a small run trained on fake data."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_logreg.config import TrainConfig
from mnist_logreg.data.loaders import to_float_pixels
from mnist_logreg.data.splits import run_splits
from mnist_logreg.model.run_folder import load_run
from mnist_logreg.report.figures import FIGURES
from mnist_logreg.report.write import compare_runs, write_report
from mnist_logreg.train.run import train_run
from tests.helpers import FAKE_TEST, cli

# Deliberately under-trained, so that the test set has errors to show.
CONFIG = TrainConfig(epochs=3, lr=0.002, batch_size=32, optimizer="sgd", val_size=60, seed=1)


@pytest.fixture(scope="module")
def fake_run_and_its_metrics(tmp_path_factory):
    """A run trained on the fake dataset, with its report written: ((run_dir, spec, data_dir), the
    bytes of metrics.json as training wrote it, before the report)."""
    from tests.helpers import fetched_fake_dataset

    root = tmp_path_factory.mktemp("report")
    spec, _data_dir = fetched_fake_dataset(root)
    train_run(
        spec, CONFIG, preset="test", data_dir=root / "data", run_dir=root / "run", verbose=False, log=lambda m: None
    )
    written = (root / "run" / "metrics.json").read_bytes()
    write_report(root / "run", root / "data", dataset=spec)
    return (root / "run", spec, root / "data"), written


@pytest.fixture(scope="module")
def fake_run(fake_run_and_its_metrics):
    """The fake dataset's run with its report: (run_dir, spec, data_dir)."""
    return fake_run_and_its_metrics[0]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_is_a_readable_non_blank_png_at_least_600_px_wide(fake_run, name):
    run_dir, _, _ = fake_run
    with Image.open(run_dir / name) as image:
        image.verify()
    with Image.open(run_dir / name) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert width >= 600 and 150 <= height <= 1200  # image grids grow by rows
    assert pixels.std() > 10  # more than a blank canvas
    assert (pixels < 128).mean() > 0.01  # some dark marks: text, lines, cells


def test_confusion_matrix_agrees_with_test_accuracy_and_predictions(fake_run):
    run_dir, spec, data_dir = fake_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (10, 10)
    assert confusion.sum() == FAKE_TEST
    assert np.trace(confusion) / confusion.sum() == pytest.approx(metrics["test_acc"])

    # An independent count from the saved model's own predictions.
    model, info = load_run(run_dir)
    images, labels = run_splits(info, data_dir, spec).tensors("test")
    predicted = model.predict(to_float_pixels(images)).tolist()
    for true, pred in zip(labels.tolist(), predicted, strict=True):
        confusion[true][pred] -= 1
    assert not confusion.any()

    per_class = metrics["per_class"]
    assert [row["class"] for row in per_class] == list(spec.classes)
    for k, row in enumerate(per_class):
        tp = sum(1 for t, p in zip(labels.tolist(), predicted, strict=True) if t == k and p == k)
        predicted_k = predicted.count(k)
        actual_k = labels.tolist().count(k)
        precision = tp / predicted_k if predicted_k else 0.0
        recall = tp / actual_k if actual_k else 0.0
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1"] == pytest.approx(2 * precision * recall / (precision + recall) if tp else 0.0)
        assert row["support"] == actual_k


def test_report_html_embeds_every_figure_and_loads_nothing_from_the_network(fake_run):
    run_dir, _, _ = fake_run
    page = (run_dir / "report.html").read_text()
    for name in FIGURES:
        encoded = base64.b64encode((run_dir / name).read_bytes()).decode("ascii")
        assert f"data:image/png;base64,{encoded}" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert "test accuracy" in page and "Per class" in page and "sgd" in page


def test_memory_and_dataloader_runs_give_the_same_report_numbers(fake_run, tmp_path):
    run_dir, spec, data_dir = fake_run
    other = train_run(
        spec,
        CONFIG,
        preset="test",
        data_dir=data_dir,
        run_dir=tmp_path / "dl",
        loader="dataloader",
        verbose=False,
        log=lambda m: None,
    )
    write_report(other.run_dir, data_dir, dataset=spec)
    # What each report counted itself from the test images: its per-class table and its drawn
    # confusion matrix (metrics.json holds training's own count, written before any report).
    tables = [per_class_table((run / "report.html").read_text()) for run in (run_dir, other.run_dir)]
    assert tables[0] == tables[1] and len(tables[0]) == len(json.loads((run_dir / "model.json").read_text())["classes"])
    drawn = [np.asarray(Image.open(run / "confusion.png").convert("RGB")) for run in (run_dir, other.run_dir)]
    assert np.array_equal(*drawn)
    assert Image.open(other.run_dir / "weights.png").size == Image.open(run_dir / "weights.png").size


def per_class_table(page: str) -> list[list[str]]:
    """The rows of a report's per-class table: class, precision, recall, F1, images."""
    table = page.split("<h2>Per class (test set)</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]  # the header row left out
    return [re.findall(r"<td>(.*?)</td>", row) for row in rows]


def test_compare_overlays_runs_and_refuses_different_datasets(fake_run, tmp_path):
    run_dir, spec, data_dir = fake_run
    second = train_run(
        spec,
        CONFIG.updated(epochs=2, seed=5),
        preset="test",
        data_dir=data_dir,
        run_dir=tmp_path / "second",
        verbose=False,
        log=lambda m: None,
    )
    rows = compare_runs([run_dir, second.run_dir], tmp_path / "compare.png")
    assert [row["epochs"] for row in rows] == [3, 2]
    assert Image.open(tmp_path / "compare.png").size[0] >= 600

    result = cli("compare", run_dir, second.run_dir, "--out", tmp_path / "cli.png")
    assert result.returncode == 0, result.stderr
    assert "test_acc" in result.stdout and "second" in result.stdout

    info = json.loads((second.run_dir / "model.json").read_text())
    info["dataset"] = "fashion-mnist"
    (second.run_dir / "model.json").write_text(json.dumps(info))
    result = cli("compare", run_dir, second.run_dir, "--out", tmp_path / "bad.png")
    assert result.returncode == 1
    assert "cannot compare runs of different datasets" in result.stderr
    assert "(fashion-mnist)" in result.stderr and "(fake-mnist)" in result.stderr


def test_report_of_a_missing_run_is_a_clean_error(tmp_path):
    result = cli("report", tmp_path / "absent")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"mnist-logreg: error: no run folder at {tmp_path / 'absent'}; run 'mnist-logreg train' first"
    )


def test_a_deskewed_run_shows_its_digits_before_and_after(tmp_path, fake_data):
    spec, data_dir = fake_data
    train_run(
        spec,
        CONFIG.updated(input_transform="deskew"),
        data_dir=data_dir,
        run_dir=tmp_path / "run",
        verbose=False,
        log=lambda m: None,
    )
    page = write_report(tmp_path / "run", data_dir, dataset=spec).read_text()
    with Image.open(tmp_path / "run" / "deskew.png") as image:
        assert image.width >= 600
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10
    assert "Deskewing: training images before" in page
    assert base64.b64encode((tmp_path / "run" / "deskew.png").read_bytes()).decode() in page


def test_a_run_without_a_transform_has_no_deskew_figure(fake_run):
    run_dir, _, _ = fake_run
    assert not (run_dir / "deskew.png").exists()
    assert "Deskewing" not in (run_dir / "report.html").read_text()


def test_metrics_are_complete_without_the_report_and_the_report_leaves_them_alone(fake_run_and_its_metrics):
    (run_dir, _, _), written = fake_run_and_its_metrics
    metrics = json.loads(written)
    assert len(metrics["confusion"]) == 10 and sum(map(sum, metrics["confusion"])) == FAKE_TEST
    assert [row["class"] for row in metrics["per_class"]] == [str(d) for d in range(10)]
    assert (run_dir / "metrics.json").read_bytes() == written


def test_a_pair_run_reports_each_pixels_folded_weight_and_says_what_the_pairs_add(fake_data, tmp_path):
    spec, data_dir = fake_data
    config = CONFIG.updated(features="pixel-pairs", epochs=1)
    train_run(
        spec, config, preset="test", data_dir=data_dir, run_dir=tmp_path / "run", verbose=False, log=lambda m: None
    )
    write_report(tmp_path / "run", data_dir, dataset=spec)
    page = (tmp_path / "run" / "report.html").read_text()
    assert "10192 inputs (784 pixels and the pairs of neighbouring pixels)" in page
    assert "plus half of every pair weight it takes part in" in page  # what the weight images show
    for name in FIGURES:
        assert (tmp_path / "run" / name).is_file(), name


def test_a_report_and_a_comparison_through_runs_latest_name_the_run_it_points_to(fake_run, tmp_path, monkeypatch):
    run_dir, spec, data_dir = fake_run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(run_dir, target_is_directory=True)
    rows = compare_runs(["runs/latest"], tmp_path / "compare.png")
    assert rows[0]["run"] == run_dir.name
    copy = tmp_path / "runs" / "copy"
    import shutil

    shutil.copytree(run_dir, copy)
    (tmp_path / "runs" / "latest").unlink()
    (tmp_path / "runs" / "latest").symlink_to("copy", target_is_directory=True)
    page = write_report("runs/latest", data_dir, dataset=spec).read_text()
    assert "Run folder <code>runs/copy</code>" in page
    assert "runs/latest" not in page


LONG_NAMES = {"bar": "a vertical bar (pen)", "circle": "circle or ellipse, open", "cross": "diagonal cross (X shape)"}


@pytest.fixture(scope="module")
def long_named_figures(tmp_path_factory):
    """Every figure of the report of a run on a folder whose classes have long names, as drawn: {name: Figure}."""
    import shutil

    from mnist_logreg.report import figures as report_figures
    from tests.helpers import write_shape_folder

    root = tmp_path_factory.mktemp("long-names")
    folder = write_shape_folder(root / "shapes", per_class=30)
    for short, following in zip(LONG_NAMES, [*list(LONG_NAMES)[1:], "bar"], strict=True):
        for n in range(8):  # mislabelled images: the test split holds confident mistakes to show
            shutil.move(folder / short / f"{n:03d}.png", folder / following / f"swapped-{short}-{n}.png")
    for short, long in LONG_NAMES.items():
        shutil.move(folder / short, folder / long)
    trained = cli("train", "--dataset", folder, "--out", root / "run", "--no-progress", "--no-report")
    assert trained.returncode == 0, trained.stderr
    figures, save = {}, report_figures._save

    def keep(fig, path):
        figures[Path(path).name] = fig
        save(fig, path)

    report_figures._save = keep
    try:
        write_report(root / "run")
    finally:
        report_figures._save = save
    return figures


def text_boxes(fig) -> list:
    """(text, window extent) of every visible text of a figure, drawn as the report saves it (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    hidden = set()  # labels of ticks beyond an axis's limits: matplotlib keeps them, and draws none
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    hidden |= {id(tick.label1), id(tick.label2)}
    found = fig.findobj(
        lambda a: isinstance(a, Text) and a.get_visible() and a.get_text().strip() and id(a) not in hidden
    )
    return [(t.get_text(), t.get_window_extent(renderer)) for t in found]


def test_every_figure_of_a_folder_run_with_long_class_names_is_drawn(long_named_figures):
    assert set(long_named_figures) == set(FIGURES) | {"deskew.png"}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_no_text_of_a_figure_runs_past_its_edges_or_over_another(long_named_figures, name):
    fig = long_named_figures[name]
    boxes = text_boxes(fig)
    assert boxes
    edge = fig.bbox
    for text, box in boxes:
        assert edge.x0 - 1 <= box.x0 and box.x1 <= edge.x1 + 1, f"{name}: {text!r} runs past a side"
        assert edge.y0 - 1 <= box.y0 and box.y1 <= edge.y1 + 1, f"{name}: {text!r} runs past the top or bottom"
    for i, (text, box) in enumerate(boxes):
        for other, other_box in boxes[i + 1 :]:
            assert not box.padded(-1).overlaps(other_box.padded(-1)), f"{name}: {text!r} overlaps {other!r}"


@pytest.mark.parametrize("name", ["weights.png", "class-evidence.png"])
def test_a_grid_of_three_classes_is_three_wide_and_its_colour_bar_label_fits(long_named_figures, name):
    fig = long_named_figures[name]
    titles = [text for text, _ in text_boxes(fig) if text in LONG_NAMES.values()]
    assert sorted(titles) == sorted(LONG_NAMES.values())
    width, _ = fig.get_size_inches()
    assert width < 8  # three cells and the title: no room for five
    assert any("contribution" in text or "weight (" in text for text, _ in text_boxes(fig))


def test_the_curves_tick_whole_epochs_only(fake_run, tmp_path):
    run_dir, _, _ = fake_run
    from mnist_logreg.model.run_folder import read_history
    from mnist_logreg.report.figures import plot_curves

    history = read_history(run_dir)
    fig = plot_curves({"a": history, "b": history[:2]}, tmp_path / "curves.png")
    for ax in fig.axes:
        assert all(float(tick).is_integer() for tick in ax.get_xticks())


def test_class_evidence_maps_sum_with_the_bias_to_each_classs_mean_logit(fake_run):
    from mnist_logreg.data.arrays import read_dataset
    from mnist_logreg.model.linear import load_weights
    from mnist_logreg.report.scores import class_evidence, predict_test_set

    run_dir, spec, data_dir = fake_run
    weights, info = load_weights(run_dir)
    predictions = predict_test_set(weights, read_dataset(spec, data_dir), len(info.classes))
    maps = class_evidence(weights, predictions)
    for k, evidence_map in maps.items():
        mean_logit = predictions.logits[predictions.labels == k, k].mean()
        assert evidence_map.sum() + weights.bias[k] == pytest.approx(mean_logit, rel=1e-6, abs=1e-6)


def test_a_run_with_pens_reports_how_it_reads_each_pen_beside_the_digits_as_they_are(fake_data, tmp_path):
    from mnist_logreg.data.pens import PENS

    spec, data_dir = fake_data
    config = CONFIG.updated(epochs=1, reject=True, pens=True)
    train_run(
        spec, config, preset="test", data_dir=data_dir, run_dir=tmp_path / "run", verbose=False, log=lambda m: None
    )
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert (
        sum(info["pens"]["counts"].values()) == round(info["splits"]["train"] / 4)
        and info["pens"]["copies_per_epoch"] > 0
    )
    write_report(tmp_path / "run", data_dir, dataset=spec)
    page = (tmp_path / "run" / "report.html").read_text()
    section = page.split("<h2>Pens</h2>", 1)[1].split("<h2>", 1)[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>((?:<td>[^<]+</td>){4})</tr>", section)
    assert [name for name, _, _ in rows] == ["test digits as they are"] + [f"redrawn: {pen}" for pen in PENS]
    for name, share, numbers in rows[1:]:
        count = info["pens"]["counts"][name.removeprefix("redrawn: ")]
        assert share.endswith(f"({count} copies)"), share
        accepted, unsure, right, top = (
            float(v) if v != "—" else None for v in re.findall(r"<td>([^<]+)</td>", numbers)
        )
        assert 0 <= accepted + unsure <= 1 and 0 <= top <= 1 and (right is None or 0 <= right <= 1)
