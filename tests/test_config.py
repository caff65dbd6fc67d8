"""Training settings: presets, their per-dataset overrides, and the rules TrainConfig checks."""

from __future__ import annotations

import pytest

from mnist_logreg.config import MIN_BATCH, PRESETS, TrainConfig, get_preset, with_enough_steps


def test_presets_deskew_mnist_only_where_it_helps():
    assert get_preset("default", "mnist").input_transform == "deskew"
    assert get_preset("default", "fashion-mnist").input_transform == "none"  # measured: it hurts garments
    assert get_preset("raw", "mnist").input_transform == "none"
    for dataset in ("mnist", "fashion-mnist"):  # the lesson's recipe, whatever the dataset
        assert get_preset("notebook", dataset) == TrainConfig(epochs=20, lr=0.001, batch_size=128, optimizer="sgd")
    assert get_preset("raw", "mnist") == get_preset("deskewed", "mnist").updated(
        input_transform="none", weight_decay=0.0
    )
    assert get_preset("default", "fashion-mnist") == get_preset("raw", "fashion-mnist").updated(
        features="pixel-pairs", epochs=8
    )


def test_presets_and_config_validation():
    assert PRESETS["notebook"] == TrainConfig(epochs=20, lr=0.001, batch_size=128, optimizer="sgd")
    assert get_preset("default").updated(epochs=3, lr=None).epochs == 3
    with pytest.raises(ValueError, match="preset='fast' is not one of"):
        get_preset("fast")
    with pytest.raises(ValueError, match="epochs=0 must be a positive integer"):
        TrainConfig(epochs=0, lr=0.1)
    with pytest.raises(ValueError, match="lr=-1 must be a positive number"):
        TrainConfig(epochs=1, lr=-1.0)
    with pytest.raises(ValueError, match="optimizer='lbfgs' is not one of"):
        TrainConfig(epochs=1, lr=0.1, optimizer="lbfgs")


@pytest.mark.parametrize(
    "images, batch, expected",
    [
        (50_000, 512, 512),  # MNIST: 98 steps an epoch already
        (2_145, 512, 85),  # the letters example: 26 batches an epoch
        (171, 512, 8),  # a small folder: as small a batch as MIN_BATCH allows
        (171, 4, 4),  # a batch smaller than the rule's is never grown
    ],
)
def test_a_small_training_split_gets_enough_steps_by_a_smaller_batch(images, batch, expected):
    import math

    config = TrainConfig(epochs=8, lr=0.1, batch_size=batch)
    enough = with_enough_steps(config, images, steps_per_epoch=25)
    assert enough.batch_size == expected
    assert enough.updated(batch_size=batch) == config  # nothing else changes
    assert math.ceil(images / enough.batch_size) >= 25 or enough.batch_size in (MIN_BATCH, batch)
