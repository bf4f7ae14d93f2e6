"""Errors that genseg reports to the user as one clear message instead of a traceback.

Exit codes (README, Reliability): 0 done; 1 `genseg data check` found problems (or an unexpected
error with a traceback: a bug); 2 a user mistake (GensegError); 3 a non-finite loss; 4 a run
stopped before its end (SIGINT, SIGTERM, trainer.stop_after), resumable; 130 stopped by Ctrl-C
(or SIGTERM) before a run started, or in another stage: nothing to resume.
"""

from __future__ import annotations

STOPPED = 130  # the shell's code for a command ended by Ctrl-C


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
    """The files of a dataset break the contract (orphans, size mismatch, unreadable file, mask
    values). A user mistake like any other (exit code 2); `genseg data check` alone answers 1,
    its verdict that a folder breaks the contract."""
