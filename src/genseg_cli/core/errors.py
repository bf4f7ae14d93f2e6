"""Errors that genseg reports to the user as one clear message instead of a traceback."""

from __future__ import annotations


class GensegError(Exception):
    """A user-facing error: bad input, missing data, impossible configuration.

    The message must name the file, id, key or value at fault and say what to do.
    The command line prints it on one line and exits with ``exit_code``.

    >>> raise GensegError("dataset 'jsrt' not found in /data; run `genseg data prepare jsrt ...`")
    """

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class DataContractError(GensegError):
    """The files of a dataset break the contract (orphans, size mismatch, unreadable file)."""

    exit_code = 1
