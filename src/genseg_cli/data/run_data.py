"""Everything one run reads from disk: verified pairs of its splits and its out-of-domain sets."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from genseg_cli.data.contract import check_dataset, check_volumes
from genseg_cli.data.dataset import Pair, load_pairs
from genseg_cli.data.io import index_folder, read_split_table
from genseg_cli.data.registry import class_names, dataset_root, dataset_spec, require_present
from genseg_cli.data.splits import Splits, make_splits
from genseg_cli.data.volumes import Volume, index_volumes, load_volumes
from genseg_cli.errors import DataContractError, GensegError

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """Pairs (2D) or volumes (3D) of one run. `ood` maps each present out-of-domain dataset to
    all of its pairs."""

    splits: Splits
    train: list[Pair] | list[Volume]
    val: list[Pair] | list[Volume]
    test: list[Pair] | list[Volume]
    ood: dict[str, list[Pair]] = field(default_factory=dict)


GREY_MODES = {"L", "I", "I;16", "1", "P"}


def check_channels(spec: DictConfig, modes: dict[str, int], root: Path) -> None:
    """Refuse colour images for a grey dataset and grey images for a colour one."""
    grey = sum(n for mode, n in modes.items() if mode in GREY_MODES)
    colour = sum(modes.values()) - grey
    if spec.channels == 1 and colour:
        raise GensegError(
            f"{root}: {colour} images are colour but dataset.channels=1; set "
            f"dataset.channels=3 or convert the images to grey"
        )
    if spec.channels == 3 and grey:
        raise GensegError(
            f"{root}: {grey} images are grey but dataset.channels=3; set "
            f"dataset.channels=1 or convert the images to RGB"
        )


def verified_ids(spec: DictConfig, root: Path, check_modes: bool = False) -> list[str]:
    """Ids of a dataset folder after checking the whole contract (raises with the offending ids)."""
    require_present(spec, root)
    volumetric = spec.dims == 3
    report = check_volumes(root) if volumetric else check_dataset(root)
    report.raise_if_broken()
    if volumetric:
        check_label_values(spec, report.modes, root)
        check_msd_labels(spec, root)
    elif check_modes:
        check_channels(spec, report.modes, root)
    for warning in report.warnings:
        log.warning("%s: %s", spec.name, warning)
    return sorted(index_volumes(root / "imagesTr") if volumetric else index_folder(root / "images"))


def check_label_values(spec: DictConfig, values: dict[str, int], root: Path) -> None:
    """Refuse label maps with values beyond background + the dataset's classes."""
    allowed = {f"label {i}" for i in range(len(class_names(spec)) + 1)}
    extra = sorted(set(values) - allowed)
    if extra:
        raise DataContractError(
            f"{root}/labelsTr: values {', '.join(v.split()[1] for v in extra)} are not among "
            f"0..{len(allowed) - 1} (background + classes {class_names(spec)}); fix the label "
            "maps or list the extra classes in dataset.classes"
        )


def check_msd_labels(spec: DictConfig, root: Path) -> None:
    """When the MSD dataset.json is there, its label list must match the registry's classes
    (a different count would mis-size every network; different names only get a warning)."""
    path = root / "dataset.json"
    if not path.is_file():
        return
    try:
        labels = json.loads(path.read_text()).get("labels")
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise DataContractError(f"{path}: unreadable ({err}); fix or remove it") from err
    if not isinstance(labels, dict):
        return
    # MSD: {"0": "background", "1": "Anterior"}; nnU-Net v2: {"background": 0, "Anterior": 1}
    by_value = (
        {int(k): str(v) for k, v in labels.items()}
        if all(str(k).isdigit() for k in labels)
        else {int(v): str(k) for k, v in labels.items()}
    )
    names = [by_value[v] for v in sorted(by_value) if v != 0]
    expected = class_names(spec)
    if len(names) != len(expected):
        raise DataContractError(
            f"{path} lists {len(names)} foreground labels {names} but dataset '{spec.name}' "
            f"has classes {expected}; set dataset.classes (and mask_channels) to match"
        )
    if [n.lower() for n in names] != [n.lower() for n in expected]:
        log.warning("%s: labels %s are named %s in the registry", path, names, expected)


def load_run_volumes(
    spec: DictConfig, data_dir: str | Path, n_labeled: int, seed: int, val_fraction: float
) -> RunData:
    """Verify, split and load a 3D (MSD-layout) dataset; 3D sets have no out-of-domain tests."""
    root = dataset_root(spec, data_dir)
    ids = verified_ids(spec, root)
    splits = make_splits(ids, spec, n_labeled, seed, val_fraction, read_split_table(root))
    return RunData(
        splits=splits,
        train=load_volumes(root, splits.train),
        val=load_volumes(root, splits.val),
        test=load_volumes(root, splits.test),
    )


def load_run_data(
    spec: DictConfig,
    data_dir: str | Path,
    n_labeled: int,
    seed: int,
    val_fraction: float,
    with_ood: bool = True,
) -> RunData:
    """Verify, split and load a dataset, then (2D) its out-of-domain sets that are present.

    >>> data = load_run_data(dataset_spec("jsrt"), "../shared/datasets", n_labeled=9, seed=0,
    ...                      val_fraction=0.2)
    >>> len(data.train), len(data.val), sorted(data.ood)
    (7, 2, ['nlm_mc', 'nlm_sz'])
    """
    if spec.dims == 3:
        return load_run_volumes(spec, data_dir, n_labeled, seed, val_fraction)
    root = dataset_root(spec, data_dir)
    ids = verified_ids(spec, root, check_modes=True)
    splits = make_splits(ids, spec, n_labeled, seed, val_fraction, read_split_table(root))
    channels = int(spec.channels)
    data = RunData(
        splits=splits,
        train=load_pairs(root, splits.train, channels),
        val=load_pairs(root, splits.val, channels),
        test=load_pairs(root, splits.test, channels),
    )
    for name in spec.ood if with_ood else []:
        ood_spec = dataset_spec(name)
        ood_root = dataset_root(ood_spec, data_dir)
        if not (ood_root / "images").is_dir():
            raise GensegError(
                f"out-of-domain set '{name}' of {spec.name} is not in {ood_root.parent}; "
                f"prepare it (genseg data prepare {name} --src ...) or train with "
                "evaluation.ood=false"
            )
        # OOD images are read with the training set's channels: the network's input is fixed
        data.ood[name] = load_pairs(ood_root, verified_ids(ood_spec, ood_root), channels)
    return data
