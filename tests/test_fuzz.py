"""The API fuzzed with Schemathesis: thousands of generated requests against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import rejecting_run
from tests.servers import serving

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


def test_generated_requests_never_get_a_5xx_and_every_answer_matches_the_schema(tmp_path):
    """One Schemathesis worker: with two threads, Hypothesis's concurrent ast.parse calls hit
    CPython 3.11's "AST constructor recursion depth mismatch" now and then, an error of the
    fuzzer's process (exit 1), not of the server."""
    rejecting_run(tmp_path / "run", input_transform="deskew")  # answers "not a digit": label null, accepted false
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with serving(tmp_path / "run") as url:
        done = subprocess.run(
            [
                str(schemathesis), "run", f"{url}/openapi.json", "--checks", ",".join(CHECKS),
                "--max-examples", "1000", "--workers", "1", "--seed", "1", "--suppress-health-check", "all",
                "--request-timeout", "30",
            ],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", done.stdout).groups())
    assert generated == passed >= 2000, (generated, passed)
    print(f"\nSchemathesis: {generated} generated requests, {passed} passed every check")
