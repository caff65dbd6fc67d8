"""Deskewing and the input transform a run records: the image maths, and every consumer applying it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_logreg import MNISTModel
from mnist_logreg.cli import build_parser, train_config
from mnist_logreg.config import PRESETS, get_preset
from mnist_logreg.errors import RunError
from mnist_logreg.inputs import apply_input_transform, deskew
from mnist_logreg.predict import predict_image_file
from mnist_logreg.preprocess import open_image, preprocess_image
from mnist_logreg.runs import RunInfo, load_run, save_model
from mnist_logreg.weights import load_weights
from tests.helpers import fetched_fake_dataset, run_process, train_preset
from tests.servers import multipart, request, serving


def moments(image: torch.Tensor) -> tuple[float, float, float, float]:
    """(centre row, centre column, var(row), cov(row, column)) of an image's ink, in float64."""
    ink = image.reshape(28, 28).double()
    rows, cols = torch.meshgrid(
        torch.arange(28.0, dtype=torch.float64), torch.arange(28.0, dtype=torch.float64), indexing="ij"
    )
    mass = ink.sum()
    cy, cx = (ink * rows).sum() / mass, (ink * cols).sum() / mass
    var_row = (ink * (rows - cy) ** 2).sum() / mass
    cov = (ink * (rows - cy) * (cols - cx)).sum() / mass
    return float(cy), float(cx), float(var_row), float(cov)


def slanted_bar(slant: float, centre=(12.0, 15.0)) -> torch.Tensor:
    """A 3-px-wide bar, 16 rows tall, leaning by ``slant`` columns per row, drawn anti-aliased."""
    image = Image.new("F", (28 * 8, 28 * 8), 0.0)  # drawn 8× larger, then box-filtered: soft edges
    draw = ImageDraw.Draw(image)
    cy, cx = centre
    top, bottom = cy - 8, cy + 8
    draw.line(
        [
            ((cx + slant * (top - cy) + 0.5) * 8, (top + 0.5) * 8),
            ((cx + slant * (bottom - cy) + 0.5) * 8, (bottom + 0.5) * 8),
        ],
        fill=1.0,
        width=24,
    )
    small = image.resize((28, 28), Image.Resampling.BOX)
    return torch.from_numpy(np.array(small, dtype=np.float32)).clamp(0, 1)


@pytest.mark.parametrize("slant", [-0.5, -0.25, 0.3, 0.6])
def test_a_slanted_bar_comes_out_upright_and_centred(slant):
    bar = slanted_bar(slant)
    _, _, var_row, cov = moments(bar)
    assert cov / var_row == pytest.approx(slant, abs=0.05)  # the bar really leans as drawn
    upright = deskew(bar)
    cy, cx, var_row, cov = moments(upright)
    assert abs(cov / var_row) < 0.02  # no slant left
    assert cy == pytest.approx(14, abs=0.1) and cx == pytest.approx(14, abs=0.1)  # centre of mass moved to the middle
    assert float(upright.sum()) == pytest.approx(float(bar.sum()), rel=0.03)  # sheared, not cut off


def test_an_upright_symmetric_digit_is_unchanged():
    """A 0 drawn upright, with its centre of mass at the middle already, comes out as it went in."""
    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).ellipse([8, 5, 20, 23], outline=255, width=2)  # symmetric about (14, 14)
    zero = torch.from_numpy(np.array(image, dtype=np.float32) / 255)
    assert abs(moments(zero)[3]) < 1e-6
    assert (deskew(zero) - zero).abs().max() < 1e-4


def test_a_batch_gives_each_image_what_it_gives_alone():
    rng = np.random.default_rng(0)
    batch = torch.stack([slanted_bar(s, (rng.uniform(10, 18), rng.uniform(10, 18))) for s in rng.uniform(-0.6, 0.6, 7)])
    batch[3] = 0  # an image without ink is left as it is
    together = deskew(batch.unsqueeze(1))  # (N, 1, 28, 28) keeps its shape
    assert together.shape == (7, 1, 28, 28)
    for i in range(7):
        alone = deskew(batch[i])  # (28, 28)
        assert alone.shape == (28, 28)
        assert torch.allclose(together[i, 0], alone, atol=1e-6)
    assert together[3].abs().max() == 0


def test_whole_datasets_are_deskewed_in_chunks_with_the_same_result(monkeypatch):
    import mnist_logreg.data as data

    batch = torch.stack([slanted_bar(s) for s in np.linspace(-0.6, 0.6, 10)]).unsqueeze(1)
    as_bytes = batch.mul(255).round().to(torch.uint8)
    whole = deskew(as_bytes.float() / 255)
    monkeypatch.setattr(data, "TRANSFORM_CHUNK", 3)
    chunked = data.transform_all("deskew", as_bytes)
    assert chunked.dtype == torch.float32 and chunked.shape == (10, 1, 28, 28)
    assert torch.allclose(chunked, whole, atol=1e-6)


def test_an_unknown_input_transform_is_refused():
    with pytest.raises(ValueError, match="input_transform='blur' is not one of"):
        apply_input_transform("blur", torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="input_transform='blur'"):
        MNISTModel(input_transform="blur")
    old = RunInfo.from_json({"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784})
    assert old.input_transform == "none"  # runs from before the field


def test_presets_deskew_mnist_only_where_it_helps():
    assert get_preset("default", "mnist").input_transform == "deskew"
    assert get_preset("default", "fashion-mnist").input_transform == "none"  # measured: it hurts garments
    assert get_preset("raw", "mnist").input_transform == "none"
    assert get_preset("notebook", "mnist") == PRESETS["notebook"]
    assert get_preset("raw", "mnist") == get_preset("deskewed", "mnist").updated(
        input_transform="none", weight_decay=0.0
    )
    assert get_preset("default", "fashion-mnist") == get_preset("raw", "fashion-mnist").updated(
        features="pixel-pairs", epochs=8
    )


def test_a_model_with_a_transform_applies_it_to_every_input():
    torch.manual_seed(0)
    plain = MNISTModel()
    deskewing = MNISTModel(input_transform="deskew")
    deskewing.load_state_dict(plain.state_dict())
    images = torch.stack([slanted_bar(s) for s in (-0.4, 0.0, 0.5)]).unsqueeze(1)  # (3, 1, 28, 28)
    expected = plain(deskew(images))
    assert torch.allclose(deskewing(images), expected, atol=1e-6)
    assert torch.allclose(deskewing(images.reshape(3, 784)), expected, atol=1e-6)  # the lesson's flat input too


@pytest.fixture(scope="module")
def deskew_run(tmp_path_factory):
    """A run trained with deskewing on a small fake dataset, and one photo-like PNG of a digit."""
    root = tmp_path_factory.mktemp("deskew")
    spec, data_dir = fetched_fake_dataset(root)
    result = train_preset(spec, "default", data_dir, root / "run", epochs=2, val_size=60)
    assert result.info.input_transform == "deskew"
    photo = Image.new("L", (200, 160), 230)
    ImageDraw.Draw(photo).line([(60, 20), (150, 30), (90, 140)], fill=30, width=12)  # a slanted 7
    photo.save(root / "seven.png")
    return result.run_dir, root / "seven.png"


def test_cli_library_and_api_give_identical_probabilities(deskew_run, tmp_path):
    run_dir, png = deskew_run
    model, info = load_run(run_dir)
    assert model.input_transform == "deskew"
    library = predict_image_file(png, model, info)
    # The torch model and the torch-free weights (weights.npz) give the same probabilities.
    weights, _ = load_weights(run_dir)
    assert weights.input_transform == "deskew"
    without_torch = predict_image_file(png, weights, info)
    with torch.no_grad():
        through_torch = model.predict_proba(preprocess_image(open_image(png)).unsqueeze(0))[0].double().numpy()
    assert np.abs(np.array(without_torch["probabilities"]) - through_torch).max() < 1e-6
    assert without_torch["probabilities"] == library["probabilities"]
    # What the model saw is the deskewed input: its slant is gone.
    seen = torch.from_numpy(library["pixels"])
    # numpy (what predict uses) and torch (grid_sample) sample the same points: equal up to rounding
    assert torch.allclose(seen, apply_input_transform("deskew", preprocess_image(open_image(png))), atol=1e-5)
    _, _, var_row, cov = moments(seen)
    assert abs(cov / var_row) < 0.05
    assert abs(moments(preprocess_image(open_image(png)))[3]) > 1.0  # ... and it was slanted before

    printed = run_process("predict", run_dir, png, "--json", "--save-preprocessed", tmp_path / "seen")
    assert printed.returncode == 0, printed.stderr
    from_cli = json.loads(printed.stdout)[0]
    saved = np.asarray(Image.open(next((tmp_path / "seen").iterdir())), dtype=np.float32) / 255
    assert np.abs(saved - seen[0].numpy()).max() <= 0.5 / 255 + 1e-6  # the saved PNG is the deskewed input

    with serving(run_dir) as url:
        status, from_api = request(f"{url}/api/predict", *multipart("file", "seven.png", png.read_bytes()))
    assert status == 200
    assert from_cli["probabilities"] == library["probabilities"] == from_api["probabilities"]


def test_a_run_without_the_field_loads_and_predicts_as_before(tmp_path):
    """A run folder written before input transforms and feature maps existed: no transform, the
    pixels, the plain linear model; through torch and through its numpy weights alike."""
    torch.manual_seed(1)
    model = MNISTModel()
    info = {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784, "preset": "default"}
    save_model(tmp_path / "old", model, info)
    assert "features" not in json.loads((tmp_path / "old" / "model.json").read_text())
    loaded, loaded_info = load_run(tmp_path / "old")
    assert loaded_info.input_transform == "none" and loaded.input_transform == "none"
    assert loaded_info.features == "pixels" and loaded.features == "pixels" and loaded.linear.in_features == 784
    weights, _ = load_weights(tmp_path / "old")
    assert (weights.input_transform, weights.features, weights.weight.shape) == ("none", "pixels", (10, 784))
    image = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(image).line([(40, 20), (80, 100)], fill=0, width=9)
    image.save(tmp_path / "one.png")
    pixels = preprocess_image(open_image(tmp_path / "one.png"))
    with torch.no_grad():
        expected = torch.softmax(model.linear(pixels.reshape(1, 784)), 1)[0]
    got = predict_image_file(tmp_path / "one.png", loaded, loaded_info)
    assert np.allclose(got["probabilities"], expected.numpy(), atol=1e-7)
    assert np.array_equal(got["pixels"], pixels.numpy())  # nothing applied on top of the preprocessing


def test_a_run_naming_an_unknown_feature_map_is_refused_clearly(tmp_path):
    info = {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784, "features": "edges"}
    save_model(tmp_path / "run", MNISTModel(), info)
    with pytest.raises(RunError, match="features='edges' is not one of .* is it from a newer mnist-logreg"):
        load_weights(tmp_path / "run")


def test_a_run_naming_an_unknown_transform_is_refused_clearly(tmp_path):
    info = {"dataset": "mnist", "classes": [str(d) for d in range(10)], "input_size": 784, "input_transform": "warp"}
    save_model(tmp_path / "run", MNISTModel(), info)
    with pytest.raises(RunError, match="input_transform='warp' is not one of"):
        load_run(tmp_path / "run")


def test_the_input_transform_flag_overrides_the_preset(fake_data, tmp_path):
    spec, data_dir = fake_data
    # The fake dataset is not in the table, so drive the library's train_run as the CLI does.
    on = train_preset(spec, "raw", data_dir, tmp_path / "on", epochs=1, val_size=60, input_transform="deskew")
    off = train_preset(spec, "default", data_dir, tmp_path / "off", epochs=1, val_size=60, input_transform="none")
    assert json.loads((on.run_dir / "model.json").read_text())["input_transform"] == "deskew"
    assert json.loads((off.run_dir / "model.json").read_text())["input_transform"] == "none"

    def config(*flags):
        return train_config(build_parser().parse_args(["train", *flags]))

    assert config().input_transform == "deskew"  # the default preset on MNIST
    assert config("--input-transform", "none").input_transform == "none"
    assert config("--dataset", "fashion-mnist").input_transform == "none"
    assert config("--dataset", "fashion-mnist", "--input-transform", "deskew").input_transform == "deskew"
    assert config("--preset", "raw", "--input-transform", "deskew").input_transform == "deskew"
    assert config("--preset", "notebook").input_transform == "none"


def test_memory_and_dataloader_paths_see_the_same_deskewed_images(fake_data):
    from mnist_logreg.data import dataloaders, load_splits, tensor_loaders

    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=3)
    memory = tensor_loaders(splits, 32, 3, "deskew")
    lesson = dataloaders(splits, 32, 3, "deskew")
    for ours, theirs in zip(memory, lesson):
        for (a, a_labels), (b, b_labels) in zip(ours, theirs):
            assert torch.equal(a_labels, b_labels)
            assert torch.allclose(a, b, atol=1e-6)
