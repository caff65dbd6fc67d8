"""Fetching and loading, offline, on small fake IDX files the tests write."""

from __future__ import annotations

import pytest
import torch

from mnist_logreg.data import TensorLoader, dataloaders, load_splits, tensor_loaders
from tests.helpers import FAKE_TEST, FAKE_TRAIN


@pytest.mark.parametrize("batch_size", [32, 40])  # 240 training images: a short last batch, and none
def test_in_memory_loader_yields_exactly_the_dataloader_batches(fake_data, batch_size):
    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=7)
    assert (splits.size("train"), splits.size("val"), splits.size("test")) == (FAKE_TRAIN - 60, 60, FAKE_TEST)
    slow = dataloaders(splits, batch_size=batch_size, seed=3)
    fast = tensor_loaders(splits, batch_size=batch_size, seed=3)
    for slow_loader, fast_loader in zip(slow, fast, strict=True):
        assert len(slow_loader) == len(fast_loader)
        for _epoch in range(3):  # the shuffle differs per epoch and must still agree
            pairs = list(zip(slow_loader, fast_loader, strict=True))
            for (slow_x, slow_y), (fast_x, fast_y) in pairs:
                assert slow_x.shape == fast_x.shape and slow_x.dtype == fast_x.dtype
                assert torch.equal(slow_x, fast_x)
                assert torch.equal(slow_y, fast_y)


def test_the_split_depends_on_the_seed(fake_data):
    spec, data_dir = fake_data
    first = load_splits(spec, data_dir, val_size=60, seed=1).val_indices
    assert first == load_splits(spec, data_dir, val_size=60, seed=1).val_indices
    assert first != load_splits(spec, data_dir, val_size=60, seed=2).val_indices
    assert sorted(first + load_splits(spec, data_dir, val_size=60, seed=1).train_indices) == list(range(FAKE_TRAIN))


def test_load_splits_refuses_an_impossible_split(fake_data):
    spec, data_dir = fake_data
    with pytest.raises(ValueError, match="val_size=300"):
        load_splits(spec, data_dir, val_size=FAKE_TRAIN)


def test_tensor_loader_without_shuffle_keeps_order_and_a_short_last_batch():
    images = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1, 1)
    labels = torch.arange(10)
    batches = list(TensorLoader(images, labels, batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        TensorLoader(images, labels[:9], batch_size=4)


def test_memory_and_dataloader_paths_see_the_same_deskewed_images(fake_data):
    from mnist_logreg.data import dataloaders, load_splits, tensor_loaders

    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=3)
    memory = tensor_loaders(splits, 32, 3, "deskew")
    lesson = dataloaders(splits, 32, 3, "deskew")
    for ours, theirs in zip(memory, lesson, strict=True):
        for (a, a_labels), (b, b_labels) in zip(ours, theirs, strict=True):
            assert torch.equal(a_labels, b_labels)
            assert torch.allclose(a, b, atol=1e-6)
