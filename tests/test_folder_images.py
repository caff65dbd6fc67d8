"""Reading a folder's images: decoded as its layout says, cached beside them, split stratified."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from mnist_logreg.data.folder_images import read_folder, stratified_split
from mnist_logreg.data.folders import open_folder
from mnist_logreg.data.splits import folder_splits
from mnist_logreg.errors import DataError
from tests.helpers import write_shape_folder

CACHE = ".mnist-logreg-cache-digits.npz"


def test_a_stratified_split_keeps_each_classs_share_and_depends_on_the_seed():
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    rest, chosen = stratified_split(labels, 20, seed=1)
    assert np.bincount(labels[chosen]).tolist() == [12, 6, 2]
    assert sorted([*rest, *chosen]) == list(range(100))
    assert np.array_equal(stratified_split(labels, 20, seed=1)[1], chosen)  # reproducible
    assert not np.array_equal(stratified_split(labels, 20, seed=2)[1], chosen)
    with pytest.raises(ValueError, match="cannot hold out 100 of 100"):
        stratified_split(labels, 100, seed=0)


def test_every_class_keeps_an_image_however_much_is_held_out():
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    rest, chosen = stratified_split(labels, 97, seed=0)
    assert np.bincount(labels[rest], minlength=3).tolist() == [1, 1, 1] and len(chosen) == 97
    with pytest.raises(ValueError, match="keep one of every class"):  # one image each: none to spare
        stratified_split(np.array([0, 1, 2]), 1, seed=0)


def test_images_are_placed_as_the_layout_says(tmp_path):
    root = write_shape_folder(tmp_path / "shapes", per_class=2)
    digits = read_folder(open_folder(root, "digits", cache=False))
    plain = read_folder(open_folder(root, "resize", cache=False))
    for arrays in (digits, plain):
        images = np.concatenate([arrays.train_images, arrays.test_images])
        assert images.shape == (6, 28, 28) and images.dtype == np.uint8
    ink = np.concatenate([digits.train_images, digits.test_images])
    assert ink[:, :4].max() == 0 and ink.max() == 255  # light ink on black, inside MNIST's 20 px box
    grey = np.concatenate([plain.train_images, plain.test_images])
    assert grey.mean() > 150  # the light paper as it is: nothing inverted, nothing cropped


def test_the_test_split_is_held_out_stratified_and_the_same_for_every_seed(tmp_path):
    root = write_shape_folder(tmp_path / "shapes", per_class=14)
    folder = open_folder(root, cache=False)
    first, _ = folder_splits(folder, val_size=6, seed=1)
    again, _ = folder_splits(folder, val_size=6, seed=1)
    other, _ = folder_splits(folder, val_size=6, seed=2)
    assert [first.size(s) for s in ("train", "val", "test")] == [30, 6, 6]
    assert np.bincount(first.tensors("test")[1]).tolist() == [2, 2, 2]
    assert np.bincount(first.tensors("val")[1]).tolist() == [2, 2, 2]
    assert first.val_indices == again.val_indices and first.val_indices != other.val_indices
    assert np.array_equal(first.tensors("test")[0], other.tensors("test")[0])  # one test split per folder


def test_unreadable_files_are_left_out_and_counted_and_a_class_with_none_readable_is_refused(tmp_path):
    root = write_shape_folder(tmp_path / "shapes", per_class=5)
    (root / "bar" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    Image.new("RGBA", (300, 90), (255, 255, 255, 0)).save(root / "cross" / "blank.png")  # readable, no ink
    Image.open(root / "circle" / "000.png").convert("CMYK").save(root / "circle" / "cmyk.jpg")  # another mode
    arrays = read_folder(open_folder(root, cache=False))
    assert arrays.summary()["unreadable"] == 2
    assert {u["path"] for u in arrays.unreadable} == {"bar/broken.png", "cross/blank.png"}
    assert len(arrays.train_labels) + len(arrays.test_labels) == 16  # the CMYK JPEG among them
    for name in os.listdir(root / "bar"):
        (root / "bar" / name).write_bytes(b"not an image")
    with pytest.raises(DataError, match="class 'bar' has no readable image"):
        read_folder(open_folder(root, cache=False))


def test_the_cache_is_read_the_second_time_and_only_what_changed_is_decoded_again(tmp_path, monkeypatch):
    import mnist_logreg.data.folder_images as folder_images

    root = write_shape_folder(tmp_path / "shapes", per_class=4)
    decoded = []
    real_decode = folder_images._decode
    monkeypatch.setattr(
        folder_images, "_decode", lambda folder, name: decoded.append(name) or real_decode(folder, name)
    )
    first = read_folder(open_folder(root))
    assert len(decoded) == 12 and (root / CACHE).is_file()
    decoded.clear()
    second = read_folder(open_folder(root))
    assert decoded == [] and np.array_equal(first.train_images, second.train_images)
    (root / "bar" / "000.png").unlink()  # removed
    Image.open(root / "cross" / "001.png").rotate(90).save(root / "cross" / "001.png")  # changed
    os.utime(root / "cross" / "001.png", ns=(1, 1))  # a new modification time, whatever the clock
    (root / "circle" / "new.png").write_bytes((root / "circle" / "000.png").read_bytes())  # added
    third = read_folder(open_folder(root))
    assert sorted(decoded) == ["circle/new.png", "cross/001.png"]
    assert len(third.train_labels) + len(third.test_labels) == 12
    decoded.clear()
    read_folder(open_folder(root))
    assert decoded == []  # the cache now holds the folder as it is


def test_no_cache_writes_nothing_into_the_folder_and_a_damaged_cache_is_rebuilt(tmp_path):
    root = write_shape_folder(tmp_path / "shapes", per_class=3)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    read_folder(open_folder(root, cache=False))
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    (root / CACHE).write_bytes(b"damaged")
    arrays = read_folder(open_folder(root))
    assert len(arrays.train_labels) + len(arrays.test_labels) == 9
    assert (root / CACHE).read_bytes()[:2] == b"PK"  # rewritten as a real archive
