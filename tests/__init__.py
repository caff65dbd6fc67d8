"""The test suite; its helper modules (``tests.servers``, ``tests.photos``) serve the benchmarks too."""

import os

# Under pytest-xdist each worker is a process of its own, one a core; torch's default of a thread a
# core would then put two busy threads on every core, each waiting on the other (the fast tests
# took 113 s of CPU that way, 92 s with one thread a worker). Here, before anything imports torch;
# the servers and commands the tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
