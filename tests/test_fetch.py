"""Fetching a dataset: verified files where torchvision looks, from any source, and clear errors."""

from __future__ import annotations

import gzip

import pytest

from mnist_logreg.data.fetch import fetch, from_folder, missing_files
from mnist_logreg.data.idx import read_idx
from mnist_logreg.errors import DataError
from tests.helpers import FAKE_TRAIN, fake_spec


def test_fetch_from_a_folder_puts_verified_files_where_torchvision_looks(tmp_path, fake_source):
    folder, contents = fake_source
    spec = fake_spec(contents)
    raw_dir = fetch(spec, tmp_path / "data", sources=[from_folder(folder)])
    assert raw_dir == tmp_path / "data" / "MNIST" / "raw"
    for name, content in contents.items():
        assert (raw_dir / name).read_bytes() == content
    # The lesson's own line now works without any network access. (torchvision imported here, not
    # for every test of the module: it takes a second.)
    from torchvision.datasets import MNIST

    dataset = MNIST(root=str(tmp_path / "data"), download=True)
    assert len(dataset) == FAKE_TRAIN
    assert list(read_idx(raw_dir / "train-labels-idx1-ubyte")) == dataset.targets.tolist()


def test_fetch_accepts_gzipped_sources(tmp_path, fake_source):
    _folder, contents = fake_source
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
