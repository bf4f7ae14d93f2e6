"""The dataset registry: one `conf/dataset/<name>.yaml` per dataset of the GenSeg protocol.

Each entry states the task, channels, headline metric, label budgets, out-of-domain test sets,
official split and citation. The files are the single source of truth; this module only reads them.

>>> spec = dataset_spec("jsrt")
>>> list(spec.ood)
['nlm_mc', 'nlm_sz']
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.config import conf_dir
from genseg_cli.core.errors import GensegError
from genseg_cli.core.suggest import did_you_mean
from genseg_cli.data.remote import fetch_hint

GENERIC = "folder"


def dataset_names() -> list[str]:
    """Every registered dataset, sorted; the generic user-folder entry is excluded."""
    return sorted(p.stem for p in (conf_dir() / "dataset").glob("*.yaml") if p.stem != GENERIC)


def dataset_spec(name: str) -> DictConfig:
    """The registry entry of `name`, with a clear error listing the known names."""
    path = conf_dir() / "dataset" / f"{name}.yaml"
    if not path.is_file():
        known = [*dataset_names(), GENERIC]
        raise GensegError(
            f"unknown dataset '{name}'{did_you_mean(name, known)}; known datasets: "
            + ", ".join(known)
        )
    return OmegaConf.load(path)


def dataset_root(spec: DictConfig, data_dir: str | Path) -> Path:
    """Folder of a dataset: `spec.root` when set, else `<data_dir>/<name>`."""
    root = OmegaConf.select(spec, "root", throw_on_missing=False)
    if root in (None, "???"):
        if spec.name == GENERIC:
            raise GensegError(
                "dataset=folder needs dataset.root=/path/to/folder (holding images/ and masks/)"
            )
        return Path(data_dir).expanduser().resolve() / spec.name
    return Path(root).expanduser().resolve()


def require_present(spec: DictConfig, root: Path) -> None:
    """Fail with the path and the one command that gets the data when a dataset is missing.

    On a fresh machine (`make train` with no datasets yet) this is the first message a user
    sees, so it names `genseg data download NAME` for public sets and the page plus the exact
    `genseg data prepare` command for sets behind a registration.
    """
    marker = root / ("imagesTr" if spec.dims == 3 else "images")
    if marker.is_dir():
        return
    data_dir = root.parent
    if spec.name != GENERIC and (data_dir / marker.name).is_dir():
        # the data directory is a dataset folder itself (GENSEG_DATA_DIR=/data/jsrt)
        raise GensegError(
            f"data directory {data_dir} is a dataset folder itself (it holds {marker.name}/); "
            f"set GENSEG_DATA_DIR (or paths.data_dir) to the folder that holds it and the "
            f"other datasets, e.g. {data_dir.parent}"
        )
    how = fetch_hint(spec, data_dir)
    if not data_dir.is_dir():
        hint = "set GENSEG_DATA_DIR or paths.data_dir to the folder that holds your datasets"
        if spec.name == GENERIC:
            raise GensegError(f"data directory {data_dir} does not exist; {hint}")
        raise GensegError(
            f"data directory {data_dir} does not exist; {hint}; to fetch '{spec.name}' into it, "
            f"{how}"
        )
    raise GensegError(f"dataset '{spec.name}' not found: {marker} is missing; {how}")


def class_names(spec: DictConfig) -> list[str]:
    """Foreground class names: `spec.classes` for multi-class data, else one ("foreground").

    >>> class_names(dataset_spec("hippocampus"))
    ['anterior', 'posterior']
    """
    return [str(c) for c in spec.get("classes") or ["foreground"]]


def mask_channels(spec: DictConfig) -> int:
    """Channels of a mask tensor: 1 ({0,1}) for binary data, one-hot with background otherwise.

    `spec.mask_channels` is what configs interpolate (segmenter outputs, generator inputs); it
    must agree with the class list, so a hand-edited entry cannot silently mis-size a network.
    """
    n = len(class_names(spec))
    expected = 1 if n == 1 else n + 1
    given = spec.get("mask_channels", 1)
    if given != expected:
        raise GensegError(
            f"dataset '{spec.name}': mask_channels={given} but classes={class_names(spec)} "
            f"needs mask_channels={expected} (1 for binary, background + classes otherwise)"
        )
    return expected
