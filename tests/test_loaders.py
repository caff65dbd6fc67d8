"""Fetching and loading, offline, on small fake IDX files the tests write."""

from __future__ import annotations

import pytest
import torch

from mnist_logreg.data.loaders import TensorLoader, dataloaders, tensor_loaders
from mnist_logreg.data.splits import load_splits
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
    """Bitwise the same batches; the training split rounded to 8 bits after deskewing, in both
    paths, and held as bytes in memory; validation and test as a saved model sees them."""
    from mnist_logreg.data.loaders import to_byte_pixels, to_float_pixels
    from mnist_logreg.images.inputs import deskew

    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=3)
    memory = tensor_loaders(splits, 32, 3, "deskew")
    lesson = dataloaders(splits, 32, 3, "deskew")
    for ours, theirs in zip(memory, lesson, strict=True):
        for (a, a_labels), (b, b_labels) in zip(ours, theirs, strict=True):
            assert torch.equal(a_labels, b_labels)
            assert torch.equal(a, b)
    train, val, test = memory
    deskewed = deskew(to_float_pixels(splits.tensors("train")[0]))
    assert train.images.dtype == torch.uint8 and torch.equal(train.images, to_byte_pixels(deskewed))
    assert (to_float_pixels(train.images) - deskewed).abs().max() <= 0.5 / 255 + 1e-7  # the nearest level
    assert val.images.dtype == test.images.dtype == torch.float32
    assert torch.equal(val.images, deskew(to_float_pixels(splits.tensors("val")[0])))


def with_extras(splits, copies: int, outliers: int, copies_per_epoch: int, outliers_per_epoch: int, lit: int = 0):
    """``splits`` with ``copies`` copies of its first training digits, ``outliers`` blank outliers and
    after them ``lit`` white ones (a second source, all of it in each epoch), of which each epoch
    draws the numbers given."""
    from dataclasses import replace

    digits = splits.train_images[splits.train_indices[:copies]]
    blank, white = torch.zeros((outliers, 28, 28), dtype=torch.uint8), torch.full((lit, 28, 28), 255, dtype=torch.uint8)
    return replace(
        splits,
        copies=255 - digits,
        copy_labels=splits.train_labels[splits.train_indices[:copies]],
        outliers=torch.cat([blank, white]),
        copies_per_epoch=copies_per_epoch,
        outlier_draws=((outliers, outliers_per_epoch), (lit, lit)) if lit else ((outliers, outliers_per_epoch),),
    )


def epoch_labels(loader) -> list[torch.Tensor]:
    return [labels for _, labels in loader]


def test_each_epoch_draws_a_fresh_seeded_sample_of_the_extras_identical_in_both_loaders(fake_data):
    """Each source of the outliers in its own number: 45 of the 150 blank ones, all 20 white ones."""
    spec, data_dir = fake_data
    splits = with_extras(load_splits(spec, data_dir, val_size=60, seed=7), 90, 150, 30, 45, lit=20)
    digits = splits.size("train")
    slow, fast = dataloaders(splits, 32, seed=3)[0], tensor_loaders(splits, 32, seed=3)[0]
    again = tensor_loaders(splits, 32, seed=3)[0]
    other = tensor_loaders(splits, 32, seed=4)[0]
    assert len(slow) == len(fast) == -(-(digits + 30 + 45 + 20) // 32)
    epochs = []
    for _epoch in range(3):
        ours, theirs = list(fast), list(slow)
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ours, theirs, strict=True))
        assert all(torch.equal(a, b) for a, b in zip(epoch_labels(again), [y for _, y in ours], strict=True))
        images = torch.cat([x for x, _ in ours])
        labels = torch.cat([y for _, y in ours])
        assert len(labels) == digits + 30 + 45 + 20
        outliers = images[labels == splits.outlier_label].flatten(1)
        assert len(outliers) == 65 and int((outliers.amax(1) == 1).sum()) == 20  # this epoch's, of each source
        epochs.append(images.flatten(1).sum(1))  # each image's ink: which images the epoch drew
    assert not torch.equal(epochs[0], epochs[1])  # another sample, another order, each epoch
    assert not all(torch.equal(a, b) for a, b in zip(epoch_labels(other), epoch_labels(fast), strict=True))


def test_the_training_split_is_transformed_part_by_part_into_what_the_whole_split_gives(fake_data):
    """The digits, copies and outliers are deskewed into one tensor a part at a time (no bytes copy
    of the whole split): the same images, bitwise, as the joined split deskewed at once."""
    from mnist_logreg.data.loaders import to_byte_pixels, transform_all

    spec, data_dir = fake_data
    splits = with_extras(load_splits(spec, data_dir, val_size=60, seed=7), 90, 150, 30, 45)
    parts, labels = splits.parts("train")
    assert [len(part) for part in parts] == [splits.size("train"), 90, 150]
    whole, whole_labels = splits.tensors("train")
    assert torch.equal(labels, whole_labels) and torch.equal(torch.cat(parts), whole)
    by_parts = transform_all("deskew", parts)
    assert torch.equal(by_parts, transform_all("deskew", whole))
    assert not torch.equal(by_parts, whole.float() / 255)  # deskewed, not merely scaled
    as_bytes = transform_all("deskew", parts, as_bytes=True)
    assert torch.equal(as_bytes, to_byte_pixels(by_parts))
    loader = tensor_loaders(splits, 32, seed=3, input_transform="deskew")[0]
    assert torch.equal(loader.images, as_bytes)


def test_a_kept_transformed_training_split_is_read_back_as_made_and_made_anew_when_an_image_changes(
    fake_data, tmp_path
):
    """The deskewed training split kept in a data folder: made and kept once, read back bit for bit
    the next time, a second file for a split that differs in one pixel, a damaged file made again,
    and nothing written without a folder to keep it in."""
    from mnist_logreg.data.loaders import held_training_split, transform_all

    spec, data_dir = fake_data
    splits = with_extras(load_splits(spec, data_dir, val_size=60, seed=7), 90, 150, 30, 45)
    parts, _ = splits.parts("train")
    made = transform_all("deskew", parts, as_bytes=True)
    said = []

    def held(parts):
        return held_training_split("deskew", parts, keep_in=tmp_path, log=said.append)

    assert torch.equal(held(parts), made) and said[-1].startswith("applying the input transform 'deskew'")
    (kept,) = (tmp_path / "transformed").iterdir()
    assert torch.equal(held(parts), made) and said[-1].endswith(f"from {kept}")
    changed = [part.clone() for part in parts]
    changed[-1][-1, 0, 5, 5] = 255  # one pixel of the last outlier
    assert torch.equal(held(changed)[:-1], made[:-1]) and said[-1].startswith("applying")
    assert len(list((tmp_path / "transformed").iterdir())) == 2
    kept.write_bytes(kept.read_bytes()[:1000])
    assert torch.equal(held(parts), made) and any("is damaged" in line for line in said[-2:])
    assert torch.equal(held_training_split("deskew", parts), made)  # made here, kept nowhere
    assert len(list((tmp_path / "transformed").iterdir())) == 2


def test_images_picked_from_the_training_split_by_position_are_those_of_the_whole_split(fake_data):
    """A few of the training split's images, in any order, across the digits, copies and outliers,
    gathered from its parts: the images and labels the joined split holds there."""
    spec, data_dir = fake_data
    splits = with_extras(load_splits(spec, data_dir, val_size=60, seed=7), 90, 150, 30, 45)
    whole, labels = splits.tensors("train")
    positions = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))[:100]
    assert {int(labels[p] == splits.outlier_label) for p in positions} == {0, 1}  # parts of both kinds
    images, picked_labels = splits.train_images_at(positions)
    assert torch.equal(images, whole[positions]) and torch.equal(picked_labels, labels[positions])


def test_the_digits_are_all_in_every_epoch_and_the_pools_are_seen_over_the_run():
    from mnist_logreg.data.loaders import EpochSample

    generator = torch.Generator().manual_seed(0)
    sample = EpochSample(50, [(40, 10), (100, 20)], generator)
    seen = torch.zeros(190, dtype=torch.int64)
    for _epoch in range(40):
        order = sample.order()
        assert len(order) == len(sample) == 80 and len(set(order.tolist())) == 80  # without replacement
        assert set(range(50)) <= set(order.tolist())  # every digit, every epoch
        assert ((order >= 50) & (order < 90)).sum() == 10 and (order >= 90).sum() == 20
        seen[order] += 1
    assert (seen[50:] > 0).all()  # every copy and outlier drawn at some epoch
    assert abs(seen[50:90].float().mean().item() - 10) < 1e-6  # 40 epochs × 10 of 40: ten times each, on average


def test_the_shards_of_two_processes_cover_each_epochs_sample_exactly_once(fake_data):
    from mnist_logreg.data.loaders import shard_batches

    spec, data_dir = fake_data
    splits = with_extras(load_splits(spec, data_dir, val_size=60, seed=7), 90, 150, 30, 45)
    whole = list(tensor_loaders(splits, 32, seed=3)[0])
    shards = [list(shard_batches(tensor_loaders(splits, 32, seed=3)[0], rank, 2)) for rank in (0, 1)]
    lesson = [list(shard_batches(dataloaders(splits, 32, seed=3)[0], rank, 2)) for rank in (0, 1)]
    for batch, first, second, slow_first, slow_second in zip(whole, *shards, *lesson, strict=True):
        together = torch.cat([first[1], second[1]]).sort().values
        assert torch.equal(together, batch[1].sort().values)
        assert torch.equal(first[1], slow_first[1]) and torch.equal(second[1], slow_second[1])
