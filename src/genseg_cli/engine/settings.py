"""The settings a training run checks before any work: each key's type and range.

One table, `SETTINGS`, says what every numeric or enumerated key of the train config accepts.
`check_value` checks one command-line value (also each value of a sweep, before Hydra starts);
`check_settings` checks a composed config (a profile or experiment may set values too). Each
mistake is one line naming the key, the value and what it must be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import DTYPES
from genseg_cli.data.registry import dataset_root, require_present
from genseg_cli.evaluation.evaluate import RESOLUTIONS


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


def at_least(low: float, optional: bool = False):
    """A number >= low (weights of optional terms, where 0 turns the term off)."""
    return number(low, optional=optional, closed=True)


def number(low: float, high: float | None = None, optional: bool = False, closed: bool = False):
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


def one_of(*choices: object):
    def check(value: object) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(str, choices))}"

    return check


KEEP = ("best_val", "final")  # trainer.keep: which weights a run keeps and scores

SETTINGS: dict[str, Rule] = {
    "seed": Rule(whole(0), "seed=0"),
    "n_labeled": Rule(whole(1), "n_labeled=9 (images for train + validation)"),
    "n_unlabeled": Rule(whole(0, optional=True), "n_unlabeled=100 (null: all)"),
    "val_fraction": Rule(number(0.0, 1.0), "val_fraction=0.2"),
    "data.image_size": Rule(whole(8), "data.image_size=128"),
    "data.batch_size": Rule(whole(1), "data.batch_size=4"),
    "trainer.steps": Rule(whole(1), "trainer.steps=1500"),
    "trainer.val_every": Rule(whole(1), "trainer.val_every=100"),
    "trainer.log_every": Rule(whole(1), "trainer.log_every=50"),
    "trainer.checkpoint_every": Rule(whole(0), "trainer.checkpoint_every=250 (0: never)"),
    "trainer.stop_after": Rule(whole(1, optional=True), "trainer.stop_after=100"),
    "trainer.num_threads": Rule(whole(1, optional=True), "trainer.num_threads=1"),
    "trainer.grad_clip": Rule(number(0.0, optional=True), "trainer.grad_clip=1.0"),
    "trainer.precision": Rule(one_of("auto", "fp32", *DTYPES), "trainer.precision=auto"),
    "trainer.progress": Rule(one_of(True, False), "trainer.progress=false"),
    "trainer.keep": Rule(one_of(*KEEP), "trainer.keep=final"),
    "evaluation.resolution": Rule(one_of(*RESOLUTIONS), "evaluation.resolution=original"),
    "evaluation.threshold": Rule(number(0.0, 1.0), "evaluation.threshold=0.5"),
    "evaluation.batch_size": Rule(whole(1), "evaluation.batch_size=16"),
    "evaluation.tstr_steps": Rule(whole(0), "evaluation.tstr_steps=300 (0: off)"),
    "evaluation.ood": Rule(one_of(True, False), "evaluation.ood=false"),
    "generator.lambda_fm": Rule(at_least(0.0, optional=True), "generator.lambda_fm=10 (0: off)"),
    "generator.unlabeled_realism": Rule(
        at_least(0.0, optional=True), "generator.unlabeled_realism=1 (0: off)"
    ),
    # the ssl group's keys (absent with ssl=none)
    "ssl.weight": Rule(at_least(0.0, optional=True), "ssl.weight=1.0"),
    "ssl.ramp_up": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.ramp_up=0.2"),
    "ssl.threshold": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.threshold=0.9"),
    "ssl.ema_decay": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.ema_decay=0.99"),
    "ssl.cutmix": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.cutmix=0.5"),
    "ssl.dice_weight": Rule(at_least(0.0, optional=True), "ssl.dice_weight=1 (0: off)"),
}


def check_value(key: str, value: object) -> None:
    """Refuse a value `key` does not accept (keys without a rule accept anything).

    >>> check_value("n_labeled", 9.5)
    Traceback (most recent call last):
    GensegError: n_labeled=9.5 must be a whole number; e.g. n_labeled=9 (...)
    """
    rule = SETTINGS.get(key)
    problem = rule.check(value) if rule else None
    if problem:
        shown = (
            "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        )
        raise GensegError(f"{key}={shown} {problem}; e.g. {rule.example}")


def check_settings(cfg: DictConfig) -> None:
    """Check a composed train config before any work: every key of `SETTINGS`, that the config
    resolves, and that the dataset's folder is there."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        if key.startswith("dataset.root"):
            dataset_root(cfg.dataset, ".")  # says how to give dataset=folder its folder
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GensegError(f"the config cannot be resolved at {key}: {detail}") from None
    for key in SETTINGS:
        value = OmegaConf.select(cfg, key, default=None)
        check_value(key, value)
    root = dataset_root(cfg.dataset, cfg.paths.data_dir)
    require_present(cfg.dataset, Path(root))
