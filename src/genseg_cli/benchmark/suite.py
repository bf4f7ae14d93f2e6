"""A benchmark suite (`conf/benchmark/<name>.yaml`): datasets with their budget and out-of-domain
sets, methods as named override sets, the reference method, seeds and the profile.

A suite expands into blocks, (dataset, budget, seed), and each block into one run per method.
Runs live at `<out>/<dataset>-n<budget>-s<seed>/<method>`, so a stopped benchmark continues
where it stopped, on this machine or another, and the report knows each run's block and method
from its folder alone.

>>> suite = load_suite("smoke")
>>> [b.name for b in suite.blocks()][:2]
['jsrt-n9-s0', 'ph2-n40-s0']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from genseg_cli.core.config import conf_dir
from genseg_cli.core.errors import GensegError
from genseg_cli.core.suggest import did_you_mean

SUITE_KEYS = {
    "description", "profile", "reference", "seeds", "jobs", "overrides", "datasets",
    "methods", "minutes",
}  # fmt: skip
REQUIRED = ("profile", "reference", "seeds", "datasets", "methods")
DATASET_KEYS = {"budget", "ood", "overrides"}
# a method's name is a folder name: letters, digits and + - _ .
METHOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")


@dataclass(frozen=True)
class Block:
    """One (dataset, budget, seed): every method of the suite runs here on one machine."""

    dataset: str
    budget: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-n{self.budget}-s{self.seed}"


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    budget: int
    ood: tuple[str, ...]
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    """A parsed suite; `path` is its yaml, for messages."""

    name: str
    path: Path
    description: str
    profile: str
    reference: str
    seeds: tuple[int, ...]
    jobs: int
    overrides: tuple[str, ...]
    datasets: tuple[DatasetEntry, ...]
    methods: dict[str, tuple[str, ...]]
    minutes: dict[str, float]

    def blocks(
        self, seeds: tuple[int, ...] | None = None, datasets: tuple[str, ...] | None = None
    ) -> list[Block]:
        """Seed by seed, then dataset by dataset: the order in which blocks are run, so that
        every dataset gains its next seed before any dataset gains two; `seeds` and `datasets`
        keep only those of the suite's."""
        chosen = self.seeds if seeds is None else seeds
        entries = [d for d in self.datasets if datasets is None or d.name in datasets]
        return [Block(d.name, d.budget, s) for s in chosen for d in entries]

    def dataset(self, name: str) -> DatasetEntry:
        return next(d for d in self.datasets if d.name == name)

    def run_overrides(self, block: Block, method: str) -> list[str]:
        """The `genseg train` overrides of one run (without its folder)."""
        entry = self.dataset(block.dataset)
        ood = f"[{','.join(entry.ood)}]"
        return [
            f"dataset={block.dataset}",
            f"n_labeled={block.budget}",
            f"seed={block.seed}",
            f"profile={self.profile}",
            f"dataset.ood={ood}",
            f"evaluation.ood={'true' if entry.ood else 'false'}",
            *self.methods[method],
            *self.overrides,
            *entry.overrides,
            "trainer.progress=false",
        ]


def suite_path(name: str) -> Path:
    """conf/benchmark/<name>.yaml, or a yaml file given by path."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise GensegError(f"suite={name}: no such file; give a suite name or a .yaml path")
        return candidate
    folder = conf_dir() / "benchmark"
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise GensegError(
            f"suite={name}: no conf/benchmark/{name}.yaml{did_you_mean(name, known)}; "
            f"suites: {', '.join(known)}"
        )
    return path


def _value(value: object) -> str:
    """A config value as a Hydra override value: lists as [a,b], booleans lower-case."""
    if isinstance(value, (list, tuple, ListConfig)):
        return "[" + ",".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def as_overrides(node: object, where: str) -> tuple[str, ...]:
    """`{method: genseg, ssl: fixmatch}` -> ("method=genseg", "ssl=fixmatch")."""
    if node is None:
        return ()
    if not isinstance(node, (dict, DictConfig)):
        raise GensegError(f"{where}: give a mapping of overrides, e.g. {{method: genseg}}")
    items = node.items() if isinstance(node, dict) else OmegaConf.to_container(node).items()
    return tuple(f"{key}={_value(value)}" for key, value in items)


def _int(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GensegError(f"{where}={value}: give a whole number >= {minimum}")
    return value


def load_suite(name: str) -> Suite:
    """Read and check a suite; a mistake is one GensegError naming the file and the key."""
    path = suite_path(name)
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # noqa: BLE001 - yaml and OmegaConf raise many kinds
        raise GensegError(f"{path}: not a readable suite ({type(err).__name__}: {err})") from None
    if not isinstance(raw, dict):
        raise GensegError(f"{path}: a suite is a mapping with keys {', '.join(REQUIRED)}")
    where = str(path)
    for key in raw:
        if key not in SUITE_KEYS:
            raise GensegError(f"{where}: unknown key '{key}'{did_you_mean(key, SUITE_KEYS)}")
    for key in REQUIRED:
        if key not in raw:
            raise GensegError(f"{where}: the suite lacks `{key}`")
    methods = raw["methods"]
    if not isinstance(methods, dict) or not methods:
        raise GensegError(f"{where}: methods: give at least one `name: {{method: ...}}`")
    for method in methods:
        if not METHOD_NAME.match(str(method)):
            raise GensegError(f"{where}: method name '{method}': use letters, digits, + - _ .")
    reference = str(raw["reference"])
    if reference not in methods:
        raise GensegError(
            f"{where}: reference '{reference}' is not one of the suite's methods "
            f"({', '.join(methods)}){did_you_mean(reference, list(methods))}"
        )
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds):
        raise GensegError(f"{where}: seeds: give a list of distinct whole numbers, e.g. [0, 1, 2]")
    datasets = []
    if not isinstance(raw["datasets"], dict) or not raw["datasets"]:
        raise GensegError(f"{where}: datasets: give at least one `name: {{budget: N}}`")
    for dataset, entry in raw["datasets"].items():
        here = f"{where}: datasets.{dataset}"
        if not isinstance(entry, dict) or "budget" not in entry:
            raise GensegError(f"{here}: give {{budget: N, ood: [...]}}")
        for key in entry:
            if key not in DATASET_KEYS:
                raise GensegError(f"{here}: unknown key '{key}'{did_you_mean(key, DATASET_KEYS)}")
        ood = entry.get("ood") or []
        if not isinstance(ood, list):
            raise GensegError(f"{here}.ood: give a list of dataset names, e.g. [nlm_mc]")
        datasets.append(
            DatasetEntry(
                name=str(dataset),
                budget=_int(entry["budget"], f"{here}.budget", 1),
                ood=tuple(str(o) for o in ood),
                overrides=as_overrides(entry.get("overrides"), f"{here}.overrides"),
            )
        )
    minutes = raw.get("minutes") or {}
    return Suite(
        name=path.stem,
        path=path,
        description=str(raw.get("description") or ""),
        profile=str(raw["profile"]),
        reference=reference,
        seeds=tuple(_int(s, f"{where}: seeds", 0) for s in seeds),
        jobs=_int(raw.get("jobs", 1), f"{where}: jobs", 1),
        overrides=as_overrides(raw.get("overrides"), f"{where}: overrides"),
        datasets=tuple(datasets),
        methods={str(m): as_overrides(o, f"{where}: methods.{m}") for m, o in methods.items()},
        minutes={str(m): float(v) for m, v in minutes.items()},
    )
