"""Overrides that Hydra's grammar cannot read as typed: a value with a letter outside plain ASCII
or a `~` must be quoted. Hydra's own answer is a lexer exception and a grammar URL; this module
names the argument and gives the quoted form to type instead."""

from __future__ import annotations

from genseg_cli.core.errors import GensegError


def quoted(arg: str) -> str:
    """`key=value` as the shell should pass it for Hydra to read the value as one string."""
    key, value = arg.split("=", 1)
    quote = "'" if '"' in value else '"'
    return f"'{key}={quote}{value}{quote}'" if quote == '"' else f'"{key}={quote}{value}{quote}"'


def check_override_text(args: list[str]) -> None:
    """Refuse an override whose value Hydra's lexer cannot read, with the quoted form."""
    from hydra.core.override_parser.overrides_parser import (
        OverrideParseException,
        OverridesParser,
    )

    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        value = arg.split("=", 1)[1]
        if value[:1] in ("'", '"'):
            continue  # quoted already: Hydra's own message is the right one
        try:
            parser.parse_overrides([arg])
        except OverrideParseException:
            odd = [c for c in value if ord(c) > 127 or c == "~"]
            if not odd:
                continue  # another mistake: train_checks names it
            raise GensegError(
                f"'{arg}': Hydra reads '{odd[0]}' only inside quotes; type it as {quoted(arg)}"
            ) from None
