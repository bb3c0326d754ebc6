"""The command line's error: one line for the user and the exit status."""

from __future__ import annotations


class CliError(Exception):
    """A one-line error for the user; ``code`` is the exit status (2 usage, 1 anything else)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
