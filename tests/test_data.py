"""Fetching and loading, offline, on small fake IDX files the tests write."""

from __future__ import annotations

import gzip

import pytest
import torch
from torchvision.datasets import MNIST

from mnist_logreg.data import TensorLoader, dataloaders, load_splits, tensor_loaders
from mnist_logreg.datasets import DATASETS, IdxFile, get_spec
from mnist_logreg.errors import DataError
from mnist_logreg.fetch import fetch, from_folder, missing_files
from mnist_logreg.idx import check_idx, read_idx
from tests.helpers import FAKE_TEST, FAKE_TRAIN, fake_spec


def test_fetch_from_a_folder_puts_verified_files_where_torchvision_looks(tmp_path, fake_source):
    folder, contents = fake_source
    spec = fake_spec(contents)
    raw_dir = fetch(spec, tmp_path / "data", sources=[from_folder(folder)])
    assert raw_dir == tmp_path / "data" / "MNIST" / "raw"
    for name, content in contents.items():
        assert (raw_dir / name).read_bytes() == content
    # The lesson's own line now works without any network access.
    dataset = MNIST(root=str(tmp_path / "data"), download=True)
    assert len(dataset) == FAKE_TRAIN
    assert list(read_idx(raw_dir / "train-labels-idx1-ubyte")) == dataset.targets.tolist()


def test_fetch_accepts_gzipped_sources(tmp_path, fake_source):
    folder, contents = fake_source
    gz_folder = tmp_path / "gz"
    gz_folder.mkdir()
    for name, content in contents.items():
        (gz_folder / f"{name}.gz").write_bytes(gzip.compress(content))
    raw_dir = fetch(fake_spec(contents), tmp_path / "data", sources=[from_folder(gz_folder)])
    assert all((raw_dir / name).read_bytes() == content for name, content in contents.items())


def test_files_already_in_place_need_no_source(tmp_path, fake_source):
    folder, contents = fake_source
    spec = fake_spec(contents)
    fetch(spec, tmp_path / "data", sources=[from_folder(folder)])
    calls = []

    def counting_source(spec, scratch):
        calls.append(1)
        return {}

    fetch(spec, tmp_path / "data", sources=[counting_source])
    assert calls == []


def _corrupt(folder, name, how):
    path = folder / name
    content = path.read_bytes()
    if how == "checksum":
        content = content[:-1] + bytes([(content[-1] + 1) % 256])
    elif how == "truncated":
        content = content[: len(content) // 2]
    elif how == "magic":
        content = b"\x00\x00\x08\x04" + content[4:]
    elif how == "gzip":
        content = gzip.compress(content)[:100]
    path.write_bytes(content)
    if how == "gzip":
        path.rename(folder / f"{name}.gz")


@pytest.mark.parametrize(
    "how, message",
    [
        ("checksum", "does not match the pinned"),
        ("truncated", "truncated, 117608 bytes where 235216 were expected"),
        ("magic", "wrong magic number 0x00000804 .expected 0x00000803."),
        ("gzip", "corrupt gzip data"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_error_and_not_left_in_place(tmp_path, fake_source, how, message):
    folder, contents = fake_source
    _corrupt(folder, "train-images-idx3-ubyte", how)
    spec = fake_spec(contents)
    with pytest.raises(DataError, match=message) as error:
        fetch(spec, tmp_path / "data", sources=[from_folder(folder)])
    raw_dir = spec.raw_dir(tmp_path / "data")
    assert not (raw_dir / "train-images-idx3-ubyte").exists()
    assert (raw_dir / "train-labels-idx1-ubyte").exists()  # the good files were kept
    assert [f.name for f in missing_files(spec, tmp_path / "data")] == ["train-images-idx3-ubyte"]
    assert not list(raw_dir.glob(".*partial"))
    assert "train-images-idx3-ubyte  (sha256 " in str(error.value)  # says which file to place by hand


def test_a_later_source_fills_what_an_earlier_one_got_wrong(tmp_path, fake_source):
    folder, contents = fake_source
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, content in contents.items():
        (bad / name).write_bytes(content)
    _corrupt(bad, "t10k-images-idx3-ubyte", "truncated")
    spec = fake_spec(contents)
    fetch(spec, tmp_path / "data", sources=[from_folder(bad), from_folder(folder)])
    assert missing_files(spec, tmp_path / "data") == []


def test_a_corrupt_file_in_place_is_replaced(tmp_path, fake_source):
    folder, contents = fake_source
    spec = fake_spec(contents)
    raw_dir = fetch(spec, tmp_path / "data", sources=[from_folder(folder)])
    (raw_dir / "train-labels-idx1-ubyte").write_bytes(b"garbage")
    fetch(spec, tmp_path / "data", sources=[from_folder(folder)])
    assert (raw_dir / "train-labels-idx1-ubyte").read_bytes() == contents["train-labels-idx1-ubyte"]


def test_when_every_source_fails_one_message_lists_each_and_the_manual_fix(tmp_path, fake_source):
    _, contents = fake_source

    def offline(spec, scratch):
        raise OSError("network is unreachable")

    spec = fake_spec(contents)
    with pytest.raises(DataError) as error:
        fetch(spec, tmp_path / "data", sources=[offline, from_folder(tmp_path / "nowhere")])
    message = str(error.value)
    assert "offline: network is unreachable" in message
    assert f"{tmp_path / 'nowhere'} is not a folder" in message
    assert str(spec.raw_dir(tmp_path / "data")) in message
    for name in contents:
        assert name in message


def test_pinned_tables_are_complete():
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert [f.name for f in spec.files] == [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ]
        assert len(spec.classes) == 10
        assert spec.sources
    assert DATASETS["fashion-mnist"].classes[0] == "T-shirt/top"
    with pytest.raises(ValueError, match="dataset='emnist' is not one of"):
        get_spec("emnist")


def test_check_idx_names_the_shape_when_the_header_disagrees():
    expected = IdxFile("x", (3,), "0" * 64)
    with pytest.raises(DataError, match=r"shape \(4,\) in header, expected \(3,\)"):
        check_idx(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd", expected, "x")


@pytest.mark.parametrize("batch_size", [32, 40])  # 240 training images: a short last batch, and none
def test_in_memory_loader_yields_exactly_the_dataloader_batches(fake_data, batch_size):
    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=7)
    assert (splits.size("train"), splits.size("val"), splits.size("test")) == (FAKE_TRAIN - 60, 60, FAKE_TEST)
    slow = dataloaders(splits, batch_size=batch_size, seed=3)
    fast = tensor_loaders(splits, batch_size=batch_size, seed=3)
    for slow_loader, fast_loader in zip(slow, fast):
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
