"""Where the config tree lives and how a stage composes it outside Hydra's command line."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import yaml
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.errors import GensegError


def folder_name(path: str) -> str:
    """The last part of a folder path: how runs on a user's folder are named
    (conf/dataset/folder.yaml's run_name), so runs of different folders are kept apart.

    >>> folder_name("/data/my_lungs/")
    'my_lungs'
    """
    return Path(str(path)).expanduser().resolve().name or "folder"


def register_resolvers() -> None:
    """The config tree's own interpolations (`${genseg.folder_name:...}`); call before Hydra or
    OmegaConf resolves a config of this tree."""
    if not OmegaConf.has_resolver("genseg.folder_name"):
        OmegaConf.register_new_resolver("genseg.folder_name", folder_name)
    if not OmegaConf.has_resolver("genseg.sweep_subdir"):
        OmegaConf.register_new_resolver("genseg.sweep_subdir", sweep_subdir)


def parsed_overrides(overrides: Iterable[object]) -> list[tuple[str, object]]:
    """`key=value` overrides as sorted (key, value) pairs, values read as YAML (false == False)."""
    pairs = []
    for text in overrides:
        key, _, value = str(text).partition("=")
        pairs.append((key, str(yaml.safe_load(value)) if value else ""))
    return sorted(pairs)


def sweep_subdir(name: str, sweep_dir: str, overrides: Iterable[object]) -> str:
    """A multirun job's folder: `name` (dataset, backbone, method, budget, seed), unless that
    folder already holds a run made with other overrides. A sweep over a key the name does not
    show (`-m generator.lambda_l1=10,100`) would otherwise send its second job into the first's
    folder; that job gets `name_<8 hex of its overrides>` instead. The same config twice keeps
    the same folder, where train refuses to overwrite a finished run."""
    stored = Path(sweep_dir) / name / "overrides.yaml"
    if not stored.is_file():
        return name
    mine = parsed_overrides(overrides)
    if parsed_overrides(yaml.safe_load(stored.read_text()) or []) == mine:
        return name
    digest = hashlib.sha256(repr(mine).encode()).hexdigest()[:8]
    return f"{name}_{digest}"


def conf_dir() -> Path:
    """The `conf/` tree: inside the installed wheel, or at the root of a source checkout."""
    packaged = Path(__file__).parents[1] / "conf"  # genseg_cli/conf in a wheel
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "conf"
    if checkout.is_dir():
        return checkout
    raise GensegError(
        f"genseg's config tree is missing (looked in {packaged} and {checkout}); reinstall"
    )


def compose(
    config_name: str, overrides: list[str] | None = None, return_hydra_config: bool = False
) -> DictConfig:
    """Compose `conf/<config_name>.yaml` with overrides, as `genseg <stage>` would.

    >>> cfg = compose("train", ["dataset=ph2", "profile=debug"])
    >>> cfg.dataset.channels
    3
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return hydra_compose(
                config_name=config_name,
                overrides=overrides or [],
                return_hydra_config=return_hydra_config,
            )
    except HydraException as err:
        raise GensegError(f"bad configuration: {err}") from err


def instantiate_explained(
    node: DictConfig,
    label: str | None = None,
    user_errors: tuple[type[BaseException], ...] = (GensegError,),
    **kwargs: object,
) -> object:
    """`hydra.utils.instantiate(node, **kwargs)`, where a constructor's own refusal (an error of
    the `user_errors` kinds) comes out as one GensegError line, prefixed with `label` (the
    config key at fault), instead of Hydra's "Error in call to target" and its traceback.

    >>> instantiate_explained(cfg.ssl, label="ssl=fixmatch", user_errors=(ValueError, GensegError))
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, user_errors):
            raise GensegError(f"{label}: {cause}" if label else str(cause)) from None
        raise
