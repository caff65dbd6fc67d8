"""Every code block in README.md and docs/ runs as written, in a scratch folder, on the real data.

Shell blocks run line by line (a trailing backslash joins lines) with the package's commands on
PATH; each line must exit 0. A line that starts a server (`mnist-logreg serve`) runs in the
background until the last block has run, as a reader's terminal would keep it. Python blocks run
in a fresh interpreter. The folder holds what the examples name: the data, photos and drawings.
A block is skipped only where the line before it says why: ``<!-- docs-test: skip (reason) -->``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from tests.photos import MAKERS, seven
from tests.servers import wait_until_answering
from tests.written_numbers import compose, on_lit_paper

pytestmark = pytest.mark.real_data

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<language>\w*)\n(?P<code>.*?)\n```", re.DOTALL)
SKIP = re.compile(r"<!-- docs-test: skip \((?P<reason>[^)]+)\) -->")


def code_blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """(language, code, reason to skip or None) of every fenced block of a page, in order."""
    found = []
    for match in BLOCK.finditer("\n" + page.read_text()):
        skip = SKIP.search(match["before"])
        found.append((match["language"], match["code"], skip["reason"] if skip else None))
    return found


def test_the_pages_have_code_blocks_and_say_why_any_is_skipped():
    blocks = [block for page in PAGES for block in code_blocks(page)]
    assert len(blocks) >= 8
    assert all(language in ("sh", "python") for language, _, _ in blocks)
    skipped = [reason for _, _, reason in blocks if reason]
    assert len(skipped) <= 3, skipped  # the suite's own commands (twice), and hardware this machine lacks


def test_the_readme_is_a_front_door_that_links_every_page_of_the_docs():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 160
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", readme))
    assert linked == {f"docs/{page.name}" for page in (REPO_ROOT / "docs").glob("*.md")}


def test_every_relative_link_of_the_pages_leads_to_a_file():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which is missing"


def commands(code: str) -> list[str]:
    """The block's command lines, continuation lines joined; blank lines and comments left out."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def scratch(real_data_dir, tmp_path_factory) -> Path:
    """A folder as the examples expect one: the data, and the photos, drawings and notes they name."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / "data").symlink_to(real_data_dir, target_is_directory=True)
    downloads = folder / "home" / "Downloads"
    downloads.mkdir(parents=True)
    for file in (real_data_dir / "FashionMNIST" / "raw").glob("*-ubyte"):
        shutil.copy(file, downloads / file.name)
    from mnist_logreg.idx import read_idx

    digits = read_idx(real_data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte")
    rng = np.random.default_rng(3)
    MAKERS["paper-jpeg"](digits[0], rng).convert("RGB").save(folder / "photo.jpg")
    (folder / "drawings").mkdir()
    MAKERS["transparent"](digits[1], rng).save(folder / "drawings" / "two.png")
    seven().save(folder / "drawings" / "seven.png")
    on_lit_paper(compose([digits[i] for i in (0, 1, 2)], rng), rng).convert("RGB").save(folder / "sticky-note.jpg")
    seven().save(folder / "digit.png")
    seven().save(folder / "a.png")
    MAKERS["paper"](digits[3], rng).save(folder / "b.jpg")
    return folder


def environment(scratch: Path) -> dict:
    bin_dir = str(Path(sys.executable).parent)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    # PYTHONPATH: the repository's own tools the pages use (python -m tests.letters).
    return {**os.environ, "PATH": path, "HOME": str(scratch / "home"), "PYTHONPATH": str(REPO_ROOT)}


def test_every_code_block_runs_as_written(scratch):
    env, servers, ran = environment(scratch), [], 0
    try:
        for page in PAGES:
            for language, code, skip in code_blocks(page):
                if skip:
                    continue
                if language == "python":
                    done = subprocess.run(
                        [sys.executable, "-c", code], cwd=scratch, env=env, capture_output=True, text=True, timeout=600
                    )
                    assert done.returncode == 0, f"{page.name}: python block failed:\n{code}\n{done.stderr[-3000:]}"
                    ran += 1
                    continue
                for line in commands(code):
                    if re.search(r"\bmnist-logreg serve\b", line):
                        port = re.search(r"--port (\d+)", line)
                        process = subprocess.Popen(
                            ["bash", "-c", line], cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                        )
                        servers.append(process)
                        wait_until_answering(f"http://127.0.0.1:{port[1] if port else 8000}/api/health", process)
                    else:
                        done = subprocess.run(
                            ["bash", "-c", line], cwd=scratch, env=env, capture_output=True, text=True, timeout=600
                        )
                        assert done.returncode == 0, (
                            f"{page.name}: {line}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
                        )
                        assert "Traceback" not in done.stderr, f"{page.name}: {line}\n{done.stderr[-3000:]}"
                    ran += 1
    finally:
        for process in servers:
            process.terminate()
            process.wait(timeout=30)
    assert ran >= 20
