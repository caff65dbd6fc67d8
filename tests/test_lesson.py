"""MNISTModel: the lesson's shapes and helpers, and the inputs it builds itself."""

from __future__ import annotations

import re

import pytest
import torch

from mnist_logreg import MNISTModel
from mnist_logreg.images.inputs import deskew
from mnist_logreg.model.lesson import accuracy, predict_image
from tests.helpers import random_batch, slanted_bar


def test_a_model_with_a_transform_applies_it_to_every_input():
    torch.manual_seed(0)
    plain = MNISTModel()
    deskewing = MNISTModel(input_transform="deskew")
    deskewing.load_state_dict(plain.state_dict())
    images = torch.stack([slanted_bar(s) for s in (-0.4, 0.0, 0.5)]).unsqueeze(1)  # (3, 1, 28, 28)
    expected = plain(deskew(images))
    assert torch.allclose(deskewing(images), expected, atol=1e-6)
    assert torch.allclose(deskewing(images.reshape(3, 784)), expected, atol=1e-6)  # the lesson's flat input too


def test_without_gradients_wide_features_are_weighed_by_chunks_to_the_same_logits():
    """A deskewing pixel-pair model: its logits by chunks (no gradients) are those of the whole batch
    at once (with gradients), and so are those of its images deskewed beforehand (``weighed``)."""
    from mnist_logreg.model.lesson import FEATURE_CHUNK

    torch.manual_seed(0)
    model = MNISTModel(input_transform="deskew", features="pixel-pairs", reject=True)
    images, _ = random_batch(2 * FEATURE_CHUNK + 44)  # two whole chunks and a short one
    whole = model(images).detach()
    with torch.no_grad():
        assert torch.equal(model(images), whole)
        assert torch.equal(model.weighed(deskew(images)), whole)


def test_accuracy_and_predict_helpers():
    outputs = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(outputs, torch.tensor([1, 0, 0])).item() == pytest.approx(2 / 3)
    model = MNISTModel()
    image, _ = random_batch(1)
    probabilities = model.predict_proba(image)
    assert probabilities.shape == (1, 10)
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert predict_image(image[0], model) == int(model.predict(image)[0]) == int(probabilities.argmax())


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (3, 28, 28), (3, 784)])
def test_the_model_takes_the_lessons_shapes(shape):
    assert MNISTModel()(torch.zeros(shape)).shape == (3, 10)


@pytest.mark.parametrize("shape", [(49, 1, 32, 32), (5, 700), (784,)])
def test_the_model_refuses_a_wrong_number_of_pixels(shape):
    with pytest.raises(ValueError, match=re.escape(f"got shape {shape}")):
        MNISTModel()(torch.zeros(shape))
