"""bench/RESULTS.md holds one section per benchmark, and README.md one paragraph for some; each
benchmark rewrites its own only, so that no figure there is typed by hand."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
README = Path(__file__).resolve().parent.parent / "README.md"
TITLE = "# Benchmark results\n"


def update_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section between ``<!-- name -->`` and ``<!-- /name -->`` (or append it)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{text.strip()}\n{end}\n"
    current = path.read_text() if path.exists() else TITLE
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        current = before + block + ("\n" + after if after else "")
    else:
        current = current.rstrip("\n") + "\n\n" + block
    path.write_text(current)


def update_readme(name: str, text: str, path: Path = README) -> None:
    """Replace the paragraph between ``<!-- bench:name -->`` and ``<!-- /bench:name -->`` in the README."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    current = path.read_text()
    if start in current and end in current:
        before, rest = current.split(start, 1)
        path.write_text(before + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])
