"""`genseg evaluate`: arrives with issue 4 (experiment workflow)."""

from __future__ import annotations

from genseg_cli.errors import GensegError


def main(args: list[str]) -> int:
    raise GensegError("genseg evaluate is not implemented yet (issue 4)", exit_code=2)
