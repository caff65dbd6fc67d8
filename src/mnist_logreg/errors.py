"""The errors a user can cause and fix: the command line prints their message on one line.

Standard library only, so that parsing arguments imports nothing heavier.
"""


class DataError(Exception):
    """A data file is missing, corrupt or not the one expected. The message says which and why."""


class RunError(Exception):
    """A run folder is missing, incomplete or does not hold a usable model."""
