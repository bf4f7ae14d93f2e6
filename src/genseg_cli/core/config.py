"""Where the config tree lives and how a stage composes it outside Hydra's command line."""

from __future__ import annotations

from pathlib import Path

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
