"""data/outliers.py: the non-digits a reject class learns from, and a run that learns it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnist_logreg.config import get_preset
from mnist_logreg.data.loaders import to_float_pixels
from mnist_logreg.data.outliers import (
    DRAWN_KINDS,
    chosen_garments,
    drawn_outliers,
    garment_outliers,
    training_outliers,
)
from mnist_logreg.data.prepared import Making
from mnist_logreg.data.splits import load_splits
from mnist_logreg.images.layout import Layout
from tests.helpers import cli, train_preset


def test_drawn_outliers_are_the_same_for_a_seed_and_differ_between_seeds():
    first, again, other = drawn_outliers(60, 1), drawn_outliers(60, 1), drawn_outliers(60, 2)
    assert first.shape == (60, 28, 28) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_drawn_outliers_are_the_same_made_here_or_spread_over_two_processes():
    told: list[int] = []
    here, spread = drawn_outliers(1100, 1), drawn_outliers(1100, 1, done=told.append, workers=2)
    assert np.array_equal(here, spread) and told == [1000, 100]  # each chunk told of once, in order
    assert np.array_equal(here[:60], drawn_outliers(60, 1))  # a chunk's images do not depend on how many follow


def test_a_seeded_choice_of_garments_is_placed_in_the_order_of_the_file():
    garments = np.arange(50, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)  # each its own grey
    chosen = chosen_garments(garments, 12, 0)
    firsts = chosen[:, 0, 0].tolist()
    assert len(chosen) == 12 and firsts == sorted(set(firsts))
    assert np.array_equal(chosen, chosen_garments(garments, 12, 0))
    assert not np.array_equal(chosen, chosen_garments(garments, 12, 1))
    assert len(chosen_garments(garments, 80, 0)) == 50  # never more than the file holds


def test_garments_are_placed_the_same_here_or_spread_over_two_processes():
    rng = np.random.default_rng(0)
    garments = np.zeros((1100, 28, 28), np.uint8)  # two chunks of PROGRESS_STEP: a box of cloth each, anywhere
    boxes = rng.integers([0, 0, 4, 4], [14, 14, 14, 14], (len(garments), 4))
    for garment, (top, left, height, width) in zip(garments, boxes, strict=True):
        garment[top : top + height, left : left + width] = rng.integers(60, 256)
    here, spread = garment_outliers(garments), garment_outliers(garments, workers=2)
    assert np.array_equal(here, spread)
    assert not np.array_equal(here, garments)  # placed: scaled and centred, not as they came


def test_every_kind_is_drawn_in_turn_and_placed_like_a_photos_ink():
    images = drawn_outliers(len(DRAWN_KINDS) * 20, 0).astype(np.float32) / 255
    by_kind = {kind: images[k :: len(DRAWN_KINDS)] for k, kind in enumerate(DRAWN_KINDS)}
    for kind in ("scribble", "strokes", "shape", "blob"):  # pen marks: scaled so their ink fits 20 px, centred
        for image in by_kind[kind]:
            rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
            assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21, kind
            assert image.max() == pytest.approx(1.0, abs=1 / 255)
    assert (by_kind["noise"].std(axis=(1, 2)) > 0.05).all()
    assert any(image.max() == 0 for image in by_kind["blank"])  # an empty image is among them


def test_without_fashion_mnist_the_outliers_are_drawn_ones_and_one_line_says_so(tmp_path):
    said = []
    images, counts = training_outliers(100, 0, tmp_path, making=Making(log=said.append))
    assert counts == {"drawn": 40} and len(images) == 40  # 0.4 per training digit
    assert said[0] == "drawing 40 outliers for the class 'not a digit' ..."
    assert len(said) == 2 and "drawn outliers only" in said[1] and "fetch --dataset fashion-mnist" in said[1]


def test_making_the_outliers_says_what_it_does_and_shows_a_bar_when_asked(tmp_path, capsys):
    said = []
    images, _ = training_outliers(1300, 0, tmp_path, making=Making(log=said.append, progress=True))
    assert said[0] == "drawing 520 outliers for the class 'not a digit' ..."
    bar = capsys.readouterr().err
    assert "outliers:" in bar and "/520 [" in bar
    assert np.array_equal(
        images, training_outliers(1300, 0, tmp_path, making=Making(log=said.append))[0]
    )  # the bar changes nothing
    training_outliers(100, 0, tmp_path, making=Making(log=said.append))
    assert capsys.readouterr().err == ""  # no bar unless asked for


def test_a_run_with_a_reject_class_trains_on_its_outliers_and_records_them(fake_data, tmp_path):
    spec, data_dir = fake_data
    result = train_preset(spec, "default", data_dir, tmp_path / "run", epochs=6, val_size=60)
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["reject"]["class"] == "not a digit" and info["reject"]["outliers"] == {"drawn": 96}
    assert 0 <= info["reject"]["threshold"] <= 1 and info["temperature"] > 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["reject"]) == {"val_accepted", "test_accepted", "test_acc_accepted"}
    assert 0 < metrics["reject"]["val_accepted"] <= 1
    assert set(metrics["calibration"]) == {"ece_before", "ece_after"}  # temperature and threshold: model.json alone
    assert result.model.linear.out_features == 11 and len(metrics["confusion"]) == 10
    # The outliers follow the digits, labelled 10, in both loaders' training set.
    splits = load_splits(spec, data_dir, val_size=60)
    with_outliers = type(splits)(**{**vars(splits), "outliers": result.splits.outliers})
    images, labels = with_outliers.tensors("train")
    assert len(labels) == 240 + 96 and (labels[240:] == 10).all() and (labels[:240] < 10).all()
    torchvision_train = with_outliers.torchvision_sets()[0]
    assert len(torchvision_train) == len(labels)
    image, label = torchvision_train[300]
    assert label == 10 and torch.equal(image, to_float_pixels(images[300]))


def test_reject_is_refused_for_classes_that_are_not_digits(fake_data, tmp_path):
    result = cli("train", "--dataset", "fashion-mnist", "--reject", "--out", tmp_path / "run", "--data-dir", tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not the digits 0-9" in result.stderr


def test_the_outliers_are_kept_in_the_data_folder_and_read_back_the_same(tmp_path):
    said = []
    made, counts = training_outliers(200, 3, tmp_path, making=Making(log=said.append))
    [kept] = (tmp_path / "outliers").iterdir()
    again, counts_again = training_outliers(200, 3, tmp_path, making=Making(log=said.append))
    assert np.array_equal(made, again) and counts == counts_again and again.dtype == np.uint8
    assert said[-2] == f"80 outliers for the class 'not a digit' from {kept}"  # then the note on Fashion-MNIST
    uncached, _ = training_outliers(200, 3, tmp_path / "elsewhere", making=Making(log=said.append, cache=False))
    assert np.array_equal(made, uncached) and not (tmp_path / "elsewhere").exists()  # cache=False writes nothing


@pytest.mark.parametrize(
    "changed",
    [{"seed": 4}, {"digits": 210}, {"layout": Layout(box=16, centre_of_mass=False)}],
    ids=["seed", "count", "layout"],
)
def test_a_changed_seed_count_or_layout_draws_them_again_beside_the_first(tmp_path, changed):
    first = training_outliers(200, 3, tmp_path, making=Making(log=lambda m: None))[0]
    said = []
    arguments = {"digits": 200, "seed": 3, "layout": Layout()} | changed
    making = Making(layout=arguments.pop("layout"), log=said.append)
    other = training_outliers(data_dir=tmp_path, making=making, **arguments)[0]
    assert any(line.startswith("drawing") for line in said)
    assert other.shape != first.shape or not np.array_equal(first, other)
    assert len(list((tmp_path / "outliers").iterdir())) == 2


def test_a_damaged_cache_is_drawn_again_and_replaced(tmp_path):
    made = training_outliers(200, 3, tmp_path, making=Making(log=lambda m: None))[0]
    [kept] = (tmp_path / "outliers").iterdir()
    kept.write_bytes(kept.read_bytes()[:5000])  # cut short, as a full disk would leave it
    said = []
    again = training_outliers(200, 3, tmp_path, making=Making(log=said.append))[0]
    assert np.array_equal(made, again)
    assert any("is damaged" in line for line in said) and any(line.startswith("drawing") for line in said)
    assert np.array_equal(training_outliers(200, 3, tmp_path, making=Making(log=said.append))[0], made)
    assert said[-2].endswith(f"from {kept}")  # rewritten whole


def test_a_run_with_kept_outliers_copies_and_deskewed_split_has_the_weights_of_one_that_made_them(fake_data, tmp_path):
    from mnist_logreg.train.run import train_run

    spec, data_dir = fake_data
    config = get_preset("default").updated(epochs=2, val_size=60)

    def train(name, cache):
        quiet = {"verbose": False, "log": lambda m: None}
        return train_run(spec, config, data_dir=data_dir, run_dir=tmp_path / name, cache=cache, **quiet).model

    drew = train("drew", cache=False)
    assert not any((data_dir / kind).exists() for kind in ("outliers", "pens", "transformed"))
    kept = train("kept", cache=True)  # draws them and keeps them, and the deskewed training split
    read = train("read", cache=True)  # reads them back
    assert all(len(list((data_dir / kind).iterdir())) == 1 for kind in ("outliers", "pens", "transformed"))
    for name, value in drew.state_dict().items():
        assert torch.equal(value, kept.state_dict()[name]) and torch.equal(value, read.state_dict()[name]), name
