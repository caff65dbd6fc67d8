"""What the model sees: deskewing and the feature maps, against plain loops, in numpy and in torch."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_logreg.images.inputs import (
    INPUT_SIZE,
    PAIR_OFFSETS,
    SIDE,
    apply_input_transform,
    deskew,
    feature_count,
    feature_map,
    fold_to_pixels,
)
from mnist_logreg.model.lesson import MNISTModel
from mnist_logreg.model.run_folder import RunInfo
from tests.helpers import make_images, model_json, moments, slanted_bar


def small_images(n=5, seed=0) -> np.ndarray:
    """Fake digits in [0, 1] with a few fully dark ones mixed in, (n, 28, 28) float32."""
    labels = np.random.default_rng(seed).integers(0, 10, n)
    images = make_images(labels, seed).astype(np.float32) / 255
    images[0] = 0  # no ink at all
    return images


def pairs_by_loops(image: np.ndarray) -> np.ndarray:
    """The pixel-pair features of one image, one pixel and one neighbour at a time."""
    features = [image.reshape(-1)]
    for dr, dc in PAIR_OFFSETS:
        channel = np.zeros((SIDE, SIDE))
        for r in range(SIDE):
            for c in range(SIDE):
                if 0 <= r + dr < SIDE and 0 <= c + dc < SIDE:
                    channel[r, c] = math.sqrt(image[r, c] * image[r + dr, c + dc])
        features.append(channel.reshape(-1))
    return np.concatenate(features)


def test_pixel_pairs_are_the_loops_in_numpy_and_in_torch():
    images = small_images()
    expected = np.stack([pairs_by_loops(image) for image in images.astype(np.float64)])
    assert feature_count("pixel-pairs") == 13 * 784 == expected.shape[1]
    np.testing.assert_allclose(feature_map("pixel-pairs", images), expected, rtol=1e-6, atol=1e-7)
    got = feature_map("pixel-pairs", torch.from_numpy(images).unsqueeze(1))
    assert isinstance(got, torch.Tensor) and got.shape == (5, 10192)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)
    # Written into a buffer, as training does (strided views, a direction at a time): the same bits
    buffer = torch.full((5, 10192), float("nan"))
    assert feature_map("pixel-pairs", torch.from_numpy(images), buffer) is buffer and torch.equal(buffer, got)


def test_on_the_cpu_torch_computes_numpys_pixel_pairs_to_the_bit():
    """Correctly rounded square roots in both (torch's own CPU kernel is an ulp off on one in ~750)."""
    rng = np.random.default_rng(5)
    images = (rng.random((200, SIDE, SIDE)) * (rng.random((200, SIDE, SIDE)) < 0.3)).astype(np.float32)
    expected = feature_map("pixel-pairs", images)
    assert np.array_equal(feature_map("pixel-pairs", torch.from_numpy(images)).numpy(), expected)
    buffer = torch.empty(200, feature_count("pixel-pairs"))
    assert np.array_equal(feature_map("pixel-pairs", torch.from_numpy(images), buffer).numpy(), expected)


def test_an_empty_batch_has_no_rows_of_features():
    for empty in (np.zeros((0, SIDE, SIDE), np.float32), torch.zeros(0, SIDE, SIDE)):
        assert tuple(feature_map("pixel-pairs", empty).shape) == (0, feature_count("pixel-pairs"))
    buffer = torch.empty(0, feature_count("pixel-pairs"))
    assert feature_map("pixel-pairs", torch.zeros(0, 1, SIDE, SIDE), buffer) is buffer


def test_plain_pixels_are_the_lessons_784_inputs():
    images = small_images()
    assert feature_count("pixels") == INPUT_SIZE
    np.testing.assert_array_equal(feature_map("pixels", images), images.reshape(5, -1))


def test_folding_onto_pixels_keeps_the_sum_and_shares_each_pair_half_and_half():
    used = feature_map("pixel-pairs", np.ones((1, SIDE, SIDE), np.float32))  # 0 where a pair is off the image
    values = np.random.default_rng(1).normal(size=(3, feature_count("pixel-pairs"))) * used
    folded = fold_to_pixels("pixel-pairs", values)
    assert folded.shape == (3, INPUT_SIZE)
    np.testing.assert_allclose(folded.sum(1), values.sum(1), rtol=1e-12)
    by_loops = values[:, :INPUT_SIZE].reshape(3, SIDE, SIDE).copy()
    for channel, (dr, dc) in enumerate(PAIR_OFFSETS, start=1):
        block = values[:, channel * INPUT_SIZE : (channel + 1) * INPUT_SIZE].reshape(3, SIDE, SIDE)
        for r in range(SIDE):
            for c in range(SIDE):
                if 0 <= r + dr < SIDE and 0 <= c + dc < SIDE:
                    by_loops[:, r, c] += block[:, r, c] / 2
                    by_loops[:, r + dr, c + dc] += block[:, r, c] / 2
    np.testing.assert_allclose(folded, by_loops.reshape(3, -1), rtol=1e-12, atol=1e-12)


def deskew_by_loops(image: np.ndarray) -> np.ndarray:
    """The deskew of one image by its definition: moments, then a bilinear sample for each pixel."""
    mass = image.sum()
    if mass == 0:
        return image.copy()
    rows, cols = np.indices(image.shape)
    cy, cx = (rows * image).sum() / mass, (cols * image).sum() / mass
    var_row = ((rows - cy) ** 2 * image).sum() / mass
    slant = min(max(((rows - cy) * (cols - cx) * image).sum() / mass / var_row, -1.0), 1.0)

    def at(y: int, x: int) -> float:
        return image[y, x] if 0 <= y < SIDE and 0 <= x < SIDE else 0.0

    out = np.zeros_like(image)
    for v in range(SIDE):
        for u in range(SIDE):
            y, x = v + cy - 14, u + slant * (v - 14) + cx - 14
            y0, x0 = math.floor(y), math.floor(x)
            fy, fx = y - y0, x - x0
            out[v, u] = (
                (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
            )  # fmt: skip
    return out


def test_deskew_is_its_definition_in_numpy_and_in_torch():
    images = small_images(6, seed=3)
    expected = np.stack([deskew_by_loops(image.astype(np.float64)) for image in images])
    got = deskew(images)
    assert got.dtype == np.float32 and got.shape == images.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)
    from_torch = deskew(torch.from_numpy(images).unsqueeze(1))
    assert isinstance(from_torch, torch.Tensor) and from_torch.shape == (6, 1, 28, 28)
    np.testing.assert_allclose(from_torch[:, 0].numpy(), got, atol=1e-6)
    np.testing.assert_array_equal(got[0], images[0])  # no ink: unchanged


def test_the_module_of_inputs_imports_neither_opencv_nor_torch():
    code = "import sys, mnist_logreg.images.inputs; print(sorted({'cv2', 'torch'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("features", ["pixels", "pixel-pairs"])
def test_features_of_one_image_alone_or_in_a_batch_are_the_same(features):
    images = small_images(4, seed=2)
    batch = feature_map(features, images)
    for i in range(4):
        np.testing.assert_array_equal(feature_map(features, images[i : i + 1])[0], batch[i])


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
    import mnist_logreg.data.loaders as loaders

    batch = torch.stack([slanted_bar(s) for s in np.linspace(-0.6, 0.6, 10)]).unsqueeze(1)
    as_bytes = batch.mul(255).round().to(torch.uint8)
    whole = deskew(as_bytes.float() / 255)
    monkeypatch.setattr(loaders, "TRANSFORM_CHUNK", 3)
    chunked = loaders.transform_all("deskew", as_bytes)
    assert chunked.dtype == torch.float32 and chunked.shape == (10, 1, 28, 28)
    assert torch.allclose(chunked, whole, atol=1e-6)


def test_numpy_deskews_many_images_a_chunk_at_a_time_with_the_same_result(monkeypatch):
    import mnist_logreg.images.inputs as inputs

    batch = np.stack([slanted_bar(s).numpy() for s in np.linspace(-0.6, 0.6, 10)])
    whole = deskew(batch)
    monkeypatch.setattr(inputs, "DESKEW_CHUNK", 3)  # 3 + 3 + 3 + 1
    assert np.array_equal(deskew(batch), whole) and not np.array_equal(whole, batch)
    assert deskew(batch[:, None]).shape == (10, 1, SIDE, SIDE) and deskew(batch[:0]).shape == (0, SIDE, SIDE)


def test_an_unknown_input_transform_is_refused():
    with pytest.raises(ValueError, match="input_transform='blur' is not one of"):
        apply_input_transform("blur", torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="input_transform='blur'"):
        MNISTModel(input_transform="blur")
    old = RunInfo.from_json(model_json())
    assert old.input_transform == "none"  # runs from before the field


def test_the_pixel_conversions_round_trip_every_level_and_agree_with_totensor():
    import torch

    from mnist_logreg.data.loaders import to_byte_pixels, to_float_pixels
    from mnist_logreg.images.inputs import byte_pixels, unit_pixels

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    unit = unit_pixels(levels)
    assert unit.dtype == np.float32 and np.array_equal(unit, to_float_pixels(torch.from_numpy(levels)).numpy())
    assert np.array_equal(byte_pixels(unit), levels)
    assert np.array_equal(to_byte_pixels(torch.from_numpy(unit)).numpy(), levels)
    beyond = np.array([-0.3, 0.0, 0.5, 1.0, 1.2], dtype=np.float32)
    assert byte_pixels(beyond).tolist() == [0, 0, 128, 255, 255]  # clipped, rounded
    between = np.random.default_rng(0).uniform(-0.1, 1.1, 10_000).astype(np.float32)  # the torch twin, bit for bit
    assert np.array_equal(
        to_byte_pixels(torch.from_numpy(np.concatenate([beyond, between]))).numpy(),
        byte_pixels(np.concatenate([beyond, between])),
    )
