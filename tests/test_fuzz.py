"""The API fuzzed with Schemathesis: thousands of generated requests against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import lying, rejecting_run
from tests.servers import correct, request, serving

pytestmark = pytest.mark.fuzz

# What every answer must satisfy. Left out: positive_data_acceptance, which expects any request
# the schema allows to succeed: a base64 string or a file the schema allows need not be an image
# with ink, and the API answers those 422 by design.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
]


def fuzz(url: str, folder: Path, examples: int, *only: str) -> tuple[int, int]:
    """Schemathesis against ``url`` (the operations whose paths match ``only``): (generated, passed).

    One Schemathesis worker: with two threads, Hypothesis's concurrent ast.parse calls hit
    CPython 3.11's "AST constructor recursion depth mismatch" now and then, an error of the
    fuzzer's process (exit 1), not of the server."""
    schemathesis = Path(sys.executable).parent / "schemathesis"
    done = subprocess.run(
        [
            str(schemathesis), "run", f"{url}/openapi.json", "--checks", ",".join(CHECKS),
            "--max-examples", str(examples), "--workers", "1", "--seed", "1", "--suppress-health-check", "all",
            "--request-timeout", "30", *(("--include-path-regex", "|".join(only)) if only else ()),
        ],
        capture_output=True, text=True, timeout=600, cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", done.stdout).groups())
    print(f"\nSchemathesis: {generated} generated requests, {passed} passed every check")
    return generated, passed


def test_generated_requests_never_get_a_5xx_and_every_answer_matches_the_schema(tmp_path):
    rejecting_run(tmp_path / "run", input_transform="deskew")  # answers "not a digit": label null, accepted false
    with serving(tmp_path / "run") as url:
        generated, passed = fuzz(url, tmp_path, 1000)
    assert generated == passed >= 2000, (generated, passed)


def test_the_corrections_routes_fuzzed_conform_and_keep_only_what_they_answered_201(shapes_run, tmp_path):
    """Against a server that keeps corrections and tunes on them (three real ones first, so that the
    fuzzed POST /api/tune starts tunes, and meets them running): what it keeps is only images in the
    run's classes' folders, under its own names, as many as GET /api/model counts."""
    folder = tmp_path / "corrections"
    with serving(shapes_run, options=("--corrections", str(folder))) as url:
        for seed in range(3):
            assert correct(url, lying(seed), "bar")[0] == 201
        generated, passed = fuzz(url, tmp_path, 500, "^/api/(corrections|tune|model)$")
        status, answer = request(f"{url}/api/model")
    assert generated == passed >= 500, (generated, passed)
    assert answer["corrections"]["learnt"] >= 3 and answer["corrections"]["error"] is None  # tunes ran, and ended well
    kept = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".runs" not in p.parts]
    assert all(re.fullmatch(r"(bar|circle|cross)/[0-9a-f]{32}\.\w+", name) for name in kept), kept
    assert status == 200 and answer["corrections"]["stored"] == len(kept)
