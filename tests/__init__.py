"""The test suite; its helper modules (``tests.servers``, ``tests.photos``) serve the benchmarks too."""
