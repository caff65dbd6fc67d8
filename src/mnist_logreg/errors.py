"""The errors a user can cause and fix: the command line prints their message on one line.

Standard library only, so that parsing arguments imports nothing heavier.
"""


class DataError(Exception):
    """A data file is missing, corrupt or not the one expected. The message says which and why."""


class RunError(Exception):
    """A run folder is missing, incomplete or does not hold a usable model."""


class UsageError(ValueError):
    """Settings that cannot work together, found once the command runs (a dataset's classes, the
    machine's devices): the command line answers it as argparse answers a bad flag, with exit 2."""
