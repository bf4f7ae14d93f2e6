"""What `genseg train` checks before Hydra starts, so that a mistake costs no run folder.

Every override's key must exist in the composed config (a did-you-mean otherwise; `+key` and
`++key` too, so a typo never runs silently with the default), every config choice must exist,
every value must have its key's type (`genseg_cli.engine.settings`), a sweep needs -m, and a
single run's composed config must be complete. `resume=RUN` continues an unfinished run with its
own settings: a finished run, or a config that differs from the saved one, is refused here,
before anything in the run folder is touched.
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.config import compose, conf_dir
from genseg_cli.core.errors import GensegError
from genseg_cli.core.suggest import did_you_mean
from genseg_cli.engine.method_settings import ABSENT_MEANS, ABSENT_WHILE_OFF
from genseg_cli.engine.settings import check_settings, check_value

MULTIRUN_FLAGS = ("-m", "--multirun")
OVERRIDES = "overrides.yaml"  # the run's own command-line overrides (Hydra's .hydra/ copy is
# rewritten by every later invocation in the same directory)
# keys that may differ between a run and its resumption: where things live, how it is shown
RESUME_FREE = {"resume", "trainer.stop_after", "trainer.progress", "trainer.num_threads"}
RESUME_FREE_PREFIXES = ("paths.",)
RESUME_FREE_SUFFIXES = ("cache_dir",)


def is_hydra(override: Override) -> bool:
    key = override.key_or_group
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def is_group(override: Override) -> bool:
    return (conf_dir() / override.key_or_group).is_dir()


def values_of(override: Override) -> list:
    """The value, or every value of a sweep (a,b,c; range(...))."""
    if override.is_sweep_override():
        return list(override.sweep_iterator())
    return [override.value()]


def as_text(value: object) -> str:
    return "null" if value is None else str(value)


def parse(args: list[str]) -> list[Override]:
    from hydra.core.override_parser.overrides_parser import OverrideParseException

    try:
        return OverridesParser.create().parse_overrides(args)
    except OverrideParseException as err:
        raise GensegError(f"cannot read the arguments of genseg train: {err}") from None


def known_keys(node: object, prefix: str = "") -> set[str]:
    """Every dotted key of a config, inner nodes and list items included."""
    keys: set[str] = set()
    if isinstance(node, dict):
        items = list(node.items())
    else:
        items = list(enumerate(node)) if isinstance(node, list) else []
    for key, value in items:
        name = f"{prefix}{key}"
        keys.add(name)
        keys |= known_keys(value, f"{name}.")
    return keys


def composed_keys(group_overrides: list[str]) -> set[str]:
    cfg = compose("train", group_overrides)
    return known_keys(OmegaConf.to_container(cfg, resolve=False))


def choices_with(group: str, key: str) -> list[str]:
    """The options of config group `group` whose composed config has `key` (only asked when a
    key is missing, so the cost of composing each option is paid on a mistake alone)."""
    folder = conf_dir() / group
    if not folder.is_dir() or group in ("profile", "experiment"):  # these set keys elsewhere
        return []
    return [
        path.stem
        for path in sorted(folder.glob("*.yaml"))
        if key in composed_keys([f"{group}={path.stem}"])
    ]


def check_groups(groups: list[Override]) -> None:
    for override in groups:
        group = override.key_or_group
        options = sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))
        for value in values_of(override):
            if value is not None and str(value) not in options:
                raise GensegError(
                    f"{group}={value}: there is no {group} '{value}'"
                    + did_you_mean(str(value), options)
                    + f"; {group} is one of {', '.join(options)}"
                )


def check_keys(groups: list[Override], changes: list[Override]) -> None:
    """Every changed, added or deleted key exists (for a swept group: under one of its choices)."""
    first = [f"{o.get_key_element()}={as_text(values_of(o)[0])}" for o in groups]
    keys = composed_keys(first)
    swept = [o for o in groups if o.is_sweep_override()]
    if swept and any(o.key_or_group not in keys for o in changes):
        for i, override in enumerate(groups):  # keys that only other choices of a sweep have
            if override.is_sweep_override():
                for value in values_of(override)[1:]:
                    choice = f"{override.get_key_element()}={as_text(value)}"
                    other = [*first[:i], choice, *first[i + 1 :]]
                    keys |= composed_keys(other)
    options = {k for k in keys if not k.startswith("hydra")}
    for override in changes:
        key, text = override.key_or_group, override.input_line
        if override.type == OverrideType.ADD and key in keys:
            raise GensegError(f"'{text}': {key} exists already; set it without '+': {key}=...")
        if key not in keys:
            adds = override.type in (OverrideType.ADD, OverrideType.FORCE_ADD)
            what = "adds a key that genseg does not read" if adds else "sets no key"
            top = key.split(".", 1)[0]
            owners = choices_with(top, key)
            if owners:  # a key of another choice of its group (method.pretrain of genseg)
                raise GensegError(
                    f"'{text}' {what}: {key} is a key of {top}={'|'.join(owners)}, not of "
                    f"the {top} chosen here; choose {top}={owners[0]} or drop it"
                )
            raise GensegError(
                f"'{text}' {what}: there is no '{key}'"
                + did_you_mean(key, options)
                + "; `genseg train --cfg job` prints every key"
            )


def check_train_arguments(args: list[str]) -> DictConfig | None:
    """Check the arguments of `genseg train`; returns a single run's composed config (None for
    a sweep, whose runs each check their own in their pre-flight, or when Hydra's own options
    such as --help or --cfg are given: Hydra answers those)."""
    flags = [a for a in args if a.startswith("-")]
    if any(f not in MULTIRUN_FLAGS for f in flags):
        return None
    multirun = bool(flags)
    overrides = [o for o in parse([a for a in args if not a.startswith("-")]) if not is_hydra(o)]
    groups = [o for o in overrides if is_group(o)]
    changes = [o for o in overrides if not is_group(o)]
    for override in overrides:
        if override.is_sweep_override() and not multirun:
            raise GensegError(
                f"'{override.input_line}' gives several values, which only a sweep takes: "
                f"genseg train -m {override.input_line} ..."
            )
    check_groups(groups)
    check_keys(groups, changes)
    for override in changes:
        if override.type != OverrideType.DEL:
            for value in values_of(override):
                check_value(override.key_or_group, value)
    if multirun:
        return None
    try:
        cfg = compose("train", [o.input_line for o in overrides])
    except HydraException as err:  # compose turns these into GensegError; a guard
        raise GensegError(f"bad configuration: {err}") from None
    check_settings(cfg)
    resume = cfg.get("resume")
    if resume:
        check_resumable(Path(str(resume)), cfg)
    return cfg


# ----- resume -------------------------------------------------------------------------------


def run_status(run_dir: Path) -> str | None:
    path = run_dir / "status.json"
    try:
        return json.loads(path.read_text()).get("status") if path.is_file() else None
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def flat(cfg: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        out.update(flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def config_differences(saved: DictConfig, current: DictConfig) -> list[str]:
    """Dotted keys whose values differ between two resolved configs (resume-free keys aside)."""
    a = flat(OmegaConf.to_container(saved, resolve=True))
    b = flat(OmegaConf.to_container(current, resolve=True))

    def absent_and_unchanged(key: str) -> bool:
        if key in ABSENT_MEANS and b.get(key) == ABSENT_MEANS[key]:
            return True
        switch, off = ABSENT_WHILE_OFF.get(key, (None, None))
        return switch is not None and a.get(switch, ABSENT_MEANS.get(switch)) == off

    return sorted(
        k
        for k in a.keys() | b.keys()
        if a.get(k) != b.get(k)
        and not (k not in a and absent_and_unchanged(k))
        and k not in RESUME_FREE
        and not k.startswith(RESUME_FREE_PREFIXES)
        and not k.endswith(RESUME_FREE_SUFFIXES)
    )


def check_resumable(run_dir: Path, cfg: DictConfig) -> None:
    """A run that `resume=` may continue: a genseg run folder with the same settings as the
    composed config `cfg`, and not finished."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise GensegError(f"resume={run_dir}: no config.yaml there; is it a genseg run?")
    differing = config_differences(OmegaConf.load(saved), cfg)
    if differing:
        raise GensegError(
            f"resume={run_dir}: the config differs from the saved run in "
            f"{', '.join(differing[:8])}; resume with the same settings"
        )
    if run_status(run_dir) == "done":
        raise GensegError(
            f"resume={run_dir}: the run is already done (its results are in metrics.json); "
            "nothing to resume. Train a new run without resume= to train again"
        )


def resume_arguments(args: list[str]) -> list[str]:
    """For resume=RUN_DIR: the run's saved overrides, the user's arguments, and its directory."""
    given = [a for a in args if a.startswith("resume=")]
    if not given:
        return args
    if any(a in MULTIRUN_FLAGS for a in args):
        raise GensegError("resume= continues one run; drop -m")
    run_dir = Path(given[-1].split("=", 1)[1]).expanduser().resolve()
    if not run_dir.is_dir():
        raise GensegError(f"resume={run_dir}: no such run folder")
    saved = run_dir / OVERRIDES
    if not saved.is_file():
        raise GensegError(f"resume={run_dir}: not a genseg run directory (no {OVERRIDES})")
    previous = [
        o
        for o in OmegaConf.load(saved)
        if not str(o).startswith(("resume=", "trainer.stop_after="))
    ]
    user = [a for a in args if not a.startswith("resume=")]
    keys = {a.split("=", 1)[0] for a in user}
    kept = [o for o in previous if str(o).split("=", 1)[0] not in keys]
    return [*kept, *user, f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def explicit_run_dir(args: list[str]) -> Path | None:
    given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")]
    return Path(given[-1]).expanduser().resolve() if given else None
