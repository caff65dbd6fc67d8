"""bench/RESULTS.md holds one section per benchmark, and the README and docs/ one paragraph for some;
each benchmark rewrites its own only, so that no figure there is typed by hand."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
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


def update_docs(name: str, text: str) -> None:
    """Replace the paragraph between ``<!-- bench:name -->`` and ``<!-- /bench:name -->`` in the
    README or the page of ``docs/`` that holds it."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    for path in PAGES:
        current = path.read_text()
        if start in current and end in current:
            before, rest = current.split(start, 1)
            path.write_text(before + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])
            return
    raise SystemExit(f"no page holds {start}")


def publish(name: str, heading: str, text: str) -> None:
    """A benchmark's text under ``heading`` in bench/RESULTS.md and in the page of docs/ that holds it, and printed."""
    update_section(name, f"## {heading}\n\n{text}")
    update_docs(name, text)
    print(text)
