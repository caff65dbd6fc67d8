"""bench/RESULTS.md holds one section per benchmark; each benchmark rewrites its own section only."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
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
