"""The errors a user can cause and fix: the command line prints their message on one line.

Anything else that escapes a command is a bug of the project, and the command line prints its
traceback and asks for a report. The value errors below stay ValueErrors for the library's callers.
Standard library only, so that parsing arguments imports nothing heavier.
"""


class UserError(Exception):
    """What a user caused and can fix; the message says what and, where it can, how."""


class DataError(UserError):
    """A data file is missing, corrupt or not the one expected. The message says which and why."""


class RunError(UserError):
    """A run folder is missing, incomplete or does not hold a usable model."""


class SettingError(UserError, ValueError):
    """A setting outside what it may be (a name not among its choices, a number out of range); the
    message names the setting and what it may be."""


class UsageError(SettingError):
    """Settings that cannot work together, found once the command runs (a dataset's classes, the
    machine's devices): the command line answers it as argparse answers a bad flag, with exit 2."""
