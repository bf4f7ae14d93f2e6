"""The kinds of value a setting accepts, as checks that return the problem in words (or None).

`genseg_cli.engine.settings` and `genseg_cli.engine.method_settings` build their tables of
`Rule`s from these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Check = Callable[[object], str | None]


@dataclass(frozen=True)
class Rule:
    """What one key accepts: `check(value)` returns the problem in words, or None; `example`
    is a valid assignment for the message."""

    check: Callable[[object], str | None]
    example: str


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole(minimum: int, optional: bool = False) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        if not _is_int(value):
            return "must be a whole number" + (" or null" if optional else "")
        return None if value >= minimum else f"must be at least {minimum}"

    return check


def at_least(low: float, optional: bool = False) -> Check:
    """A number >= low (weights of optional terms, where 0 turns the term off)."""
    return number(low, optional=optional, closed=True)


def number(
    low: float, high: float | None = None, optional: bool = False, closed: bool = False
) -> Check:
    """A number in the open interval (low, high), or the closed [low, high] when `closed`;
    high None: no upper bound."""

    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number" + (" or null" if optional else "")
        above = value >= low if closed else value > low
        below = high is None or (value <= high if closed else value < high)
        if above and below:
            return None
        if closed:
            return f"must be at least {low}" if high is None else f"must lie in [{low}, {high}]"
        return f"must be above {low}" + (f" and below {high}" if high is not None else "")

    return check


def one_of(*choices: object) -> Check:
    def check(value: object) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(str, choices))}"

    return check


def flag() -> Check:
    return one_of(True, False)


def text(optional: bool = False) -> Check:
    """A word or a path (null too when `optional`)."""

    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        return (
            None
            if isinstance(value, str) and value
            else "must be a text" + (" or null" if optional else "")
        )

    return check


def _listed(value: object) -> list | None:
    if isinstance(value, str) or not isinstance(value, Sequence | list):
        try:  # an OmegaConf ListConfig is no Sequence subclass
            from omegaconf import ListConfig

            return list(value) if isinstance(value, ListConfig) else None
        except ImportError:  # pragma: no cover
            return None
    return list(value)


def list_of(item: Check, non_empty: bool = False, unique: bool = False) -> Check:
    """A list whose every item passes `item`."""

    def check(value: object) -> str | None:
        items = _listed(value)
        if items is None:
            return "must be a list, e.g. [a,b]"
        if non_empty and not items:
            return "must list at least one item"
        if unique and len(set(map(str, items))) != len(items):
            return "lists an item twice"
        for entry in items:
            problem = item(entry)
            if problem:
                return f"holds {entry}, which {problem}"
        return None

    return check


def even_kernel(value: object) -> str | None:
    """A kernel size of a stride-2 layer: even and at least 2 (sizes halve exactly)."""
    if not _is_int(value) or value < 2 or value % 2:
        return "must be an even whole number >= 2"
    return None
