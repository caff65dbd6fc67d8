"""How long a developer waits on the tests: ``make test-fast`` three times and ``make test`` once,
each with pytest's ``--durations=25``, run through make as a developer runs them.

    make bench-suite      (about 13 minutes on two cores)

Writes bench/suite-results.json, the durations lists to bench/RESULTS.md, and the times to the
paragraph of docs/development.md that quotes them.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from datetime import date
from pathlib import Path

from bench.sections import REPO, publish, update_section

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "suite-results.json"
FAST_ROUNDS = 3
DURATIONS = 25
SUMMARY = re.compile(r"(?P<counts>\d+ passed[^\n]*?) in (?P<seconds>[\d.]+)s")  # pytest's last line


def timed_make(target: str) -> dict:
    """``make target`` with ``--durations``: the wall time, pytest's own, its counts and slowest tests."""
    env = {**os.environ, "PYTEST_ADDOPTS": f"--durations={DURATIONS}"}
    start = time.perf_counter()
    done = subprocess.run(["make", "--no-print-directory", target], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"make {target} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    *_, summary = SUMMARY.finditer(done.stdout)
    slowest = re.findall(r"^(\d+\.\d+)s (call|setup|teardown) +(.+)$", done.stdout, re.MULTILINE)
    return {
        "wall_s": round(wall, 1),
        "pytest_s": float(summary["seconds"]),
        "counts": summary["counts"],
        "slowest": [{"seconds": float(s), "when": when, "test": test} for s, when, test in slowest],
    }


def durations_table(run: dict) -> str:
    rows = "\n".join(f"| {t['seconds']:.2f} | {t['when']} | `{t['test']}` |" for t in run["slowest"])
    return f"| s | phase | test |\n| ---: | --- | --- |\n{rows}"


def main() -> None:
    fast = [timed_make("test-fast") for _ in range(FAST_ROUNDS)]
    for n, run in enumerate(fast, 1):
        print(f"make test-fast, round {n}: {run['pytest_s']:.1f} s ({run['counts']})", flush=True)
    whole = timed_make("test")
    print(f"make test: {whole['pytest_s']:.1f} s ({whole['counts']})", flush=True)
    results = {"date": date.today().isoformat(), "cores": os.cpu_count(), "fast": fast, "whole": whole}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    seconds = sorted(run["pytest_s"] for run in fast)
    text = (
        f"The last `make bench-suite` ({results['date']}, {results['cores']} cores) measured `make test-fast` "
        f"at {seconds[0]:.1f} s at best and {statistics.median(seconds):.1f} s as the median of {FAST_ROUNDS} runs "
        f"({fast[0]['counts']}), and `make test` at {whole['pytest_s'] / 60:.1f} min ({whole['counts']}), "
        "pytest's own figures; the slowest tests of each are listed in "
        "[bench/RESULTS.md](../bench/RESULTS.md)."
    )
    publish("suite", "The test suite", text)
    update_section(
        "suite-durations",
        f"### Slowest tests of `make test-fast` (its first round)\n\n{durations_table(fast[0])}\n\n"
        f"### Slowest tests of `make test`\n\n{durations_table(whole)}",
    )


if __name__ == "__main__":
    main()
