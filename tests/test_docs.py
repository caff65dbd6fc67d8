"""Every code block in README.md and docs/ runs as written, as a new user runs it after `make run` alone.

The blocks run in a scratch folder that stands for a fresh clone after `make run`: the fetched
data, the default run in runs/ with runs/latest pointing to it, the repository's .gitignore, and
nothing else; whatever else a page needs, the page itself must say how to make (the examples'
images, the letters' fonts). Afterwards git sees nothing new there: every file the examples
write lies under a folder the clone ignores.

Shell blocks run line by line (a trailing backslash joins lines) with the package's commands on
PATH; each line must exit 0. A `make` line runs in the repository itself, as it would in the
clone. A line that starts a server (`mnist-logreg serve`) runs in the background until the last
block has run, as a reader's terminal would keep it. A line an earlier block already ran word for
word (its comment aside) in the same folder is checked once, unless it names runs/latest, which
moves as runs are trained. A `train` line met again points runs/latest back at the run it made the
first time, as running it again would make anew: the same command trains a bitwise-identical
model (test_real_data.py checks it).
Python blocks run in a fresh interpreter.
A block is skipped only where the line before it says why: ``<!-- docs-test: skip (reason) -->``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tests.servers import wait_until_answering

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
def scratch(real_data_dir, default_run, tmp_path_factory) -> Path:
    """A folder as a clone is after `make run`: data fetched, the default run trained, under git."""
    folder = tmp_path_factory.mktemp("clone")
    shutil.copy(REPO_ROOT / ".gitignore", folder / ".gitignore")
    (folder / "data").symlink_to(real_data_dir, target_is_directory=True)  # what `make run` fetched
    shutil.copytree(default_run.run_dir, folder / "runs" / "mnist-default-20261203-120000")  # what it trained
    (folder / "runs" / "latest").symlink_to("mnist-default-20261203-120000", target_is_directory=True)
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    (folder / ".git" / "info" / "exclude").write_text("/data\n")  # a link here, the data folder in a clone
    subprocess.run([*git, "add", ".gitignore"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=folder, check=True)
    assert untracked(folder) == []
    return folder


def untracked(folder: Path) -> list[str]:
    """What git would call new or changed in ``folder``: files the examples left outside ignored folders."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return status.stdout.splitlines()


def without_comment(line: str) -> str:
    """A shell line without its trailing ``# comment``: what it runs."""
    return re.sub(r"\s+#\s.*$", "", line).strip()


def environment(home: Path) -> dict:
    """The reader's shell: the package's commands on PATH, an empty ``home`` (outside the clone, where
    tools keep their caches), and the repository's own tools the pages use (python -m tests.letters)."""
    bin_dir = str(Path(sys.executable).parent)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}


def test_every_code_block_runs_as_written(scratch, tmp_path):
    env, servers, ran, checked = environment(tmp_path / "home"), [], 0, set()
    latest, trained = scratch / "runs" / "latest", {}  # a train line: the run it pointed runs/latest to
    (tmp_path / "home").mkdir()
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
                    where = REPO_ROOT if line.startswith("make ") else scratch  # make acts on the clone itself
                    once = (where, without_comment(line))
                    if once in checked:
                        if once in trained:
                            latest.unlink()
                            latest.symlink_to(trained[once], target_is_directory=True)
                        continue
                    if "runs/latest" not in line:
                        checked.add(once)
                    if re.search(r"\bmnist-logreg serve\b", line):
                        port = re.search(r"--port (\d+)", line)
                        process = subprocess.Popen(
                            ["bash", "-c", line], cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                        )
                        servers.append(process)
                        wait_until_answering(f"http://127.0.0.1:{port[1] if port else 8000}/api/health", process)
                    else:
                        pointed = os.readlink(latest) if latest.is_symlink() else None
                        done = subprocess.run(
                            ["bash", "-c", line], cwd=where, env=env, capture_output=True, text=True, timeout=600
                        )
                        assert done.returncode == 0, (
                            f"{page.name}: {line}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
                        )
                        assert "Traceback" not in done.stderr, f"{page.name}: {line}\n{done.stderr[-3000:]}"
                        if re.match(r"mnist-logreg train\b", line) and os.readlink(latest) != pointed:
                            trained[once] = os.readlink(latest)
                    ran += 1
    finally:
        for process in servers:
            process.terminate()
            process.wait(timeout=30)
    assert ran >= 20
    assert untracked(scratch) == [], "the examples wrote files that git does not ignore"
