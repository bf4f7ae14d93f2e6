"""Which runs a report may average or pair: a run's variant, setup and start weights.

The rules, applied to every finished run that one report (or `genseg runs`) collects:

- Overrides: the entries of a run's overrides.yaml (its .hydra/overrides.yaml where that is
  missing), less those that do not change how a run trains or that other columns already hold:
  the identity (dataset, n_labeled, method, backbone, seed), the setup (profile, experiment), the
  objective on unlabeled images (ssl, part of the method's name), where things live or how they
  are shown (paths.*, hydra*, trainer.progress, ...), which OOD sets are scored, and the start
  weights (backbone.weights / backbone.encoder_weights: recorded as `start_weights`).
  A self-training teacher (`ssl.teacher_run=FOLDER`) is a different folder for every seed; it
  counts as the teacher's method (`ssl.teacher_run=baseline`, read from the teacher's
  metrics.json), so the seeds of one recipe average and pair together.
- Shared overrides: an override (the same `key=value`) given to EVERY collected run is not a
  variant. The report names it once in its header and method labels stay plain (`genseg`, not
  `genseg [trainer.steps=300]`). It is computed over the whole collected set (all datasets under
  sweep_dir together), so one run without it, or with another value, makes it a variant of the
  runs that have it. Only overrides that differ between runs make variants.
- Setup: the run's `experiment=` and `profile=` overrides; a run with neither used train.yaml's
  default profile and is `profile=cpu` (a named experiment is a setup of its own, even one that
  picks the CPU profile). The setup is a key of its own, never a variant: runs of two setups are
  never averaged, paired or compared for label efficiency. One setup for every run goes into the
  header; tables show the column only when there are several.
- Start weights: metrics.json `run.start_weights` (null: `none`, random initialisation); runs from
  before that field: config.yaml's backbone.weights or backbone.encoder_weights, then the overrides.
  When every run started from the same weights the header says so; otherwise a run that did not
  start from scratch carries `start_weights=<value>` in its variant, so ImageNet-initialised and
  scratch runs are summarised apart (and paired like any other variant).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

OVERRIDES = "overrides.yaml"  # the command-line overrides a run was trained with
HYDRA_OVERRIDES = Path(".hydra") / "overrides.yaml"  # Hydra's copy: also in pre-flight failures
DEFAULT_SETUP = "profile=cpu"  # conf/train.yaml: `profile: cpu`, `experiment: null`
SETUP_KEYS = ("experiment", "profile")
WEIGHT_KEYS = ("backbone.weights", "backbone.encoder_weights")
SCRATCH = "none"
# overrides that do not make a variant: the identity of a run, its setup (a column of its own),
# where things live or how they are shown, and the start weights (a column of their own)
NOT_VARIANT = {"dataset", "n_labeled", "method", "backbone", "seed", *SETUP_KEYS, *WEIGHT_KEYS}
NOT_VARIANT |= {"ssl"}  # the objective is part of the method's name (baseline+fixmatch)
NOT_VARIANT |= {"evaluation.ood"}  # which out-of-domain sets are scored, not how a run trains
NOT_VARIANT |= {"resume", "trainer.progress", "trainer.num_threads", "trainer.stop_after"}
NOT_VARIANT_PREFIXES = ("paths.", "hydra")  # hydra.*, hydra/launcher=...
TEACHER_KEY = "ssl.teacher_run"  # a run folder per seed: shown as the teacher's method


class BadRunFile(Exception):
    """A run file that cannot be read; the message is the reason."""


def override_key(override: str) -> str:
    """`+mlo.xi=0.1` -> `mlo.xi` (Hydra's +, ++ and ~ prefixes dropped)."""
    return override.split("=", 1)[0].lstrip("+~")


def read_overrides(run_dir: Path) -> list[str]:
    """The overrides a run was trained with ([] where neither overrides file exists)."""
    for name in (OVERRIDES, HYDRA_OVERRIDES):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            overrides = yaml.safe_load(path.read_text()) or []
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise BadRunFile(f"{name} unreadable: {err}") from None
        if not isinstance(overrides, list):
            raise BadRunFile(f"{name} is not a list of overrides")
        return [str(o) for o in overrides]
    return []


def variant_overrides(overrides: Iterable[str]) -> frozenset[str]:
    """The overrides that may make a variant (before the shared ones are taken out).

    >>> sorted(variant_overrides(["method=genseg", "mlo.xi=0.1", "paths.output_dir=/x"]))
    ['mlo.xi=0.1']
    """
    keys = {o: override_key(o) for o in overrides}
    skip = NOT_VARIANT_PREFIXES
    return frozenset(
        teacher_as_method(o) if k == TEACHER_KEY else o
        for o, k in keys.items()
        if k not in NOT_VARIANT and not k.startswith(skip)
    )


def teacher_as_method(override: str) -> str:
    """`ssl.teacher_run=FOLDER` -> `ssl.teacher_run=<the teacher run's method>`; unchanged when
    the teacher's metrics.json cannot be read (then the folder is all the report knows)."""
    folder = Path(override.split("=", 1)[1]).expanduser()
    try:
        method = json.loads((folder / "metrics.json").read_text())["run"]["method"]
    except (OSError, ValueError, KeyError, TypeError):
        return override
    return f"{TEACHER_KEY}={method}"


def setup_of(overrides: Iterable[str]) -> str:
    """`experiment=X profile=Y` from a run's overrides, the last of each key winning.

    >>> setup_of(["profile=paper", "seed=0"]), setup_of([]), setup_of(["experiment=ph2_cpu"])
    ('profile=paper', 'profile=cpu', 'experiment=ph2_cpu')
    """
    chosen: dict[str, str] = {}
    for override in overrides:
        key = override_key(override)
        if key in SETUP_KEYS and "=" in override:
            value = override.split("=", 1)[1]
            if value in ("null", ""):
                chosen.pop(key, None)
            else:
                chosen[key] = value
    parts = [f"{k}={chosen[k]}" for k in SETUP_KEYS if k in chosen]
    return " ".join(parts) or DEFAULT_SETUP


def _weights_value(value: Any) -> str:
    return SCRATCH if value in (None, "", "null", "none") else str(value)


def start_weights_of(
    run_info: Mapping[str, Any] | None, run_dir: Path, overrides: list[str]
) -> str:
    """What a run's segmenter started from: `none`, `imagenet` or a weights path."""
    if run_info is not None and "start_weights" in run_info:
        return _weights_value(run_info["start_weights"])
    config = run_dir / "config.yaml"  # runs from before metrics.json recorded it
    if config.is_file():
        try:
            backbone = (yaml.safe_load(config.read_text()) or {}).get("backbone") or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
            backbone = {}
        if isinstance(backbone, dict) and ("weights" in backbone or "encoder_weights" in backbone):
            return _weights_value(backbone.get("weights") or backbone.get("encoder_weights"))
    given = {override_key(o): o.split("=", 1)[-1] for o in overrides if "=" in o}
    return _weights_value(given.get("backbone.weights") or given.get("backbone.encoder_weights"))


@dataclass(frozen=True)
class Shared:
    """What every collected run has in common, named once in a report's header."""

    overrides: tuple[str, ...] = ()  # in every run (sorted)
    setups: tuple[str, ...] = ()  # the distinct setups (one: shared)
    start_weights: tuple[str, ...] = ()  # the distinct start weights (one: shared)

    @property
    def one_setup(self) -> bool:
        return len(self.setups) <= 1

    @property
    def one_start(self) -> bool:
        return len(self.start_weights) <= 1

    def header(self) -> list[str]:
        """The report's header lines, e.g. ['shared overrides: trainer.steps=300', ...]."""
        lines = [f"shared overrides: {' '.join(self.overrides) or 'none'}"]
        if self.one_setup:
            lines.append(f"setup: {self.setups[0] if self.setups else DEFAULT_SETUP}")
        else:
            lines.append(f"setup: per row ({', '.join(self.setups)})")
        if self.one_start:
            weights = self.start_weights[0] if self.start_weights else SCRATCH
            lines.append(f"start weights: {weights}")
        else:
            lines.append(f"start weights: in the method label ({', '.join(self.start_weights)})")
        return lines


def find_shared(
    override_sets: list[frozenset[str]], setups: Iterable[str], start_weights: Iterable[str]
) -> Shared:
    """The overrides in every set (none for an empty collection), the distinct setups and start
    weights."""
    common = frozenset.intersection(*override_sets) if override_sets else frozenset()
    distinct = (tuple(sorted(set(values))) for values in (setups, start_weights))
    return Shared(tuple(sorted(common)), *distinct)


def variant_of(overrides: frozenset[str], start_weights: str, shared: Shared) -> str:
    """The sorted, space-separated overrides that set a run apart from the others ("" for the
    method's defaults), with `start_weights=X` where the start weights differ between runs.

    >>> variant_of(frozenset({"mlo.xi=0.1", "trainer.steps=300"}), "none",
    ...            Shared(("trainer.steps=300",), ("profile=cpu",), ("none",)))
    'mlo.xi=0.1'
    """
    kept = set(overrides) - set(shared.overrides)
    if not shared.one_start and start_weights != SCRATCH:
        kept.add(f"start_weights={start_weights}")
    return " ".join(sorted(kept))


def method_label(method: str, variant: str) -> str:
    """`genseg` or, for a variant, `genseg [mlo.generator_weights=true]`."""
    return f"{method} [{variant}]" if variant else method
