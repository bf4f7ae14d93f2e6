"""Deterministic splits: a fixed test set per dataset, and a labeled set per (seed, n_labeled).

Ids are sorted before any shuffling, so splits never depend on directory listing order. The test
split depends only on the dataset (its official split, or a fixed share of ids drawn with a
seed derived from the dataset name); the labeled train + validation ids are drawn from the
remaining pool with the run's seed. For one seed, smaller budgets are prefixes of larger ones
(9 within 35 within 175), so label-efficiency curves compare nested sets. The unlabeled ids are
the pool images outside the labeled ones (their masks are never read), taken in the same seeded
order, so a smaller `n_unlabeled` is a prefix of a larger one; never a test id.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError


@dataclass(frozen=True)
class Splits:
    """Ids of one run: labeled train and validation, the fixed test set, the labeled pool, and
    the pool images used without their labels."""

    train: list[str]
    val: list[str]
    test: list[str]
    pool: list[str]
    unlabeled: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return asdict(self)


def _name_seed(name: str) -> int:
    # crc32 is stable across Python processes, unlike hash()
    return zlib.crc32(name.encode())


def uses_split_table(spec: DictConfig) -> bool:
    """Whether the dataset's test set comes from split.csv (its pool and test values are set)."""
    return bool(spec.split.get("pool") and spec.split.get("test"))


def split_table_problems(
    ids: list[str], spec: DictConfig, split_table: dict[str, str]
) -> list[str]:
    """What is wrong in a split.csv the dataset uses: a split value that is neither a pool nor a
    test value (a typo would drop the id from every split), and ids with no image pair."""
    where = getattr(split_table, "path", "split.csv")
    lines = getattr(split_table, "lines", {})
    allowed = [*spec.split.pool, *spec.split.test]
    problems = []
    for key, value in split_table.items():
        at = f"{where} line {lines[key]}" if key in lines else str(where)
        if value not in allowed:
            problems.append(
                f"{at}: '{value}' for {key} is not a split of '{spec.name}'; "
                f"use one of {', '.join(allowed)}"
            )
    missing = sorted(set(split_table) - set(ids))
    for key in missing[:5]:
        at = f"{where} line {lines[key]}" if key in lines else str(where)
        problems.append(f"{at}: the id '{key}' has no image and mask; fix the id or drop the row")
    if len(missing) > 5:
        problems.append(f"{where}: {len(missing) - 5} more ids without an image and mask")
    return problems


def fixed_test_split(
    ids: list[str], spec: DictConfig, split_table: dict[str, str] | None
) -> tuple[list[str], list[str]]:
    """(pool, test): the official split when the dataset has one, else a fixed share of ids."""
    ids = sorted(ids)
    pool_values, test_values = spec.split.get("pool"), spec.split.get("test")
    if split_table is not None and pool_values and test_values:
        problems = split_table_problems(ids, spec, split_table)
        if problems:
            raise GensegError(
                problems[0] + (f" (and {len(problems) - 1} more problems)" if problems[1:] else "")
            )
        unknown = sorted(set(ids) - split_table.keys())
        if unknown:
            raise GensegError(
                f"split.csv of '{spec.name}' has no row for {len(unknown)} ids "
                f"(e.g. {', '.join(unknown[:5])}); add them or delete split.csv"
            )
        pool = [i for i in ids if split_table[i] in pool_values]
        test = [i for i in ids if split_table[i] in test_values]
        if not pool or not test:
            raise GensegError(
                f"split.csv of '{spec.name}' gives {len(pool)} pool ids ({list(pool_values)}) and "
                f"{len(test)} test ids ({list(test_values)}); both must be non-empty"
            )
        return pool, test
    fraction = spec.split.get("test_fraction")
    if not fraction:
        raise GensegError(
            f"dataset '{spec.name}' defines its test set by split.csv, which is missing; "
            "prepare it with `genseg data prepare` or set dataset.split.test_fraction=0.25"
        )
    order = np.random.default_rng(_name_seed(spec.name)).permutation(len(ids))
    n_test = max(1, round(len(ids) * float(fraction)))
    test = sorted(ids[i] for i in order[:n_test])
    pool = sorted(ids[i] for i in order[n_test:])
    return pool, test


def n_validation(n_labeled: int, val_fraction: float) -> int:
    """Validation share of a budget: at least one image, and at least one left for training."""
    return min(max(1, round(n_labeled * val_fraction)), n_labeled - 1)


def pool_order(pool: list[str], seed: int, dataset: str) -> list[str]:
    """The sorted pool in the run's seeded order: labeled ids first, then unlabeled ones."""
    pool = sorted(pool)
    order = np.random.default_rng([seed, _name_seed(dataset)]).permutation(len(pool))
    return [pool[i] for i in order]


def draw_labeled(
    pool: list[str], n_labeled: int, seed: int, val_fraction: float, dataset: str
) -> tuple[list[str], list[str]]:
    """(train, val) ids: the first `n_labeled` of a seeded permutation of the sorted pool."""
    if n_labeled < 2:
        raise GensegError(
            f"n_labeled={n_labeled} is too small: at least 2 labeled images are needed "
            "(one to train, one to validate)"
        )
    if n_labeled > len(pool):
        raise GensegError(
            f"n_labeled={n_labeled} exceeds the labeled pool of '{dataset}' "
            f"({len(pool)} images outside the fixed test split); the maximum is {len(pool)}"
        )
    n_train = n_labeled - n_validation(n_labeled, val_fraction)
    chosen = pool_order(pool, seed, dataset)[:n_labeled]
    return sorted(chosen[:n_train]), sorted(chosen[n_train:])


def draw_unlabeled(
    pool: list[str], n_labeled: int, n_unlabeled: int | None, seed: int, dataset: str
) -> list[str]:
    """Pool ids after the labeled ones in the seeded order: all of them (None) or the first
    `n_unlabeled` (0: none)."""
    rest = pool_order(pool, seed, dataset)[n_labeled:]
    if n_unlabeled is None:
        return sorted(rest)
    if n_unlabeled < 0:
        raise GensegError(f"n_unlabeled={n_unlabeled} must be 0 or more (null: every pool image)")
    if n_unlabeled > len(rest):
        raise GensegError(
            f"n_unlabeled={n_unlabeled} exceeds the {len(rest)} unlabeled pool images of "
            f"'{dataset}' with n_labeled={n_labeled}; the maximum is {len(rest)} (null: all)"
        )
    return sorted(rest[:n_unlabeled])


def make_splits(
    ids: list[str],
    spec: DictConfig,
    n_labeled: int,
    seed: int,
    val_fraction: float,
    split_table: dict[str, str] | None = None,
    n_unlabeled: int | None = 0,
) -> Splits:
    """All splits of one run.

    >>> ids = [f"x{i:03d}" for i in range(247)]
    >>> s = make_splits(ids, spec, n_labeled=9, seed=0, val_fraction=0.2)
    >>> len(s.train), len(s.val), len(s.test)
    (7, 2, 62)
    """
    pool, test = fixed_test_split(ids, spec, split_table)
    train, val = draw_labeled(pool, n_labeled, seed, val_fraction, spec.name)
    unlabeled = draw_unlabeled(pool, n_labeled, n_unlabeled, seed, spec.name)
    return Splits(train=train, val=val, test=test, pool=pool, unlabeled=unlabeled)
