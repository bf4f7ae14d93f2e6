"""Everything one run reads from disk: verified samples of its splits and its out-of-domain sets.

The dataset's `dims` picks the codec (2D pairs or 3D volumes) that checks, indexes and reads the
folder; this module only orders the work: verify, split, load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from genseg_cli.data.codecs import codec_for
from genseg_cli.data.io import read_split_table
from genseg_cli.data.registry import dataset_root, dataset_spec, require_present
from genseg_cli.data.remote import fetch_hint
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec
from genseg_cli.data.splits import Splits, make_splits
from genseg_cli.data.unlabeled import add_extra_images, extra_images, image_file, pool_share

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """Samples (2D pairs or 3D volumes) of one run. `ood` maps each present out-of-domain
    dataset to all of its samples; `ood_absent` each absent one to why it is not scored."""

    splits: Splits
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    ood: dict[str, list[Sample]] = field(default_factory=dict)
    ood_absent: dict[str, str] = field(default_factory=dict)


def absent_ood(spec: DictConfig, data_dir: str | Path) -> dict[str, str]:
    """Each out-of-domain set of registry entry `spec` not in `data_dir`, with a line that says
    where it was looked for and how to get it (a set behind a registration is common: such a run
    still trains and scores the rest)."""
    absent = {}
    for name in spec.ood:
        ood_spec = dataset_spec(name)
        root = dataset_root(ood_spec, data_dir)
        if not codec_for(ood_spec.dims).is_present(root):
            how = fetch_hint(ood_spec, root.parent)
            absent[name] = f"not in {root.parent}, not scored; to score it, {how}"
    return absent


def verified_ids(spec: DictConfig, root: Path, training: bool = False) -> list[str]:
    """Ids of a dataset folder after checking the whole contract against the registry entry
    `spec` (raises with the offending ids). `training`: the set a run learns from, whose images'
    channels must match (2D) and whose masks must not all be empty (a set only scored may be
    all background, e.g. healthy cases)."""
    require_present(spec, root)
    codec = codec_for(spec.dims)
    report = codec.check(root)
    report.raise_if_broken(training=training)
    codec.check_entry(spec, report, root, training)
    warnings = report.warnings + ([report.empty_problem()] if report.all_empty else [])
    for warning in warnings:
        log.warning("%s: %s", spec.name, warning)
    return codec.ids(root)


def load_unlabeled(
    entry: DictConfig, data_dir: str | Path, ids: list[str], spec: DataSpec
) -> list[Sample]:
    """The images of `ids` without their masks (read as a prediction input is: the mask file is
    never opened), for the unlabeled stream."""
    codec, root = codec_for(entry.dims), dataset_root(entry, data_dir)
    pool = codec.index(root / codec.folders[0])
    return [codec.read_input(image_file(root, codec, i, pool), spec) for i in ids]


def load_run_data(
    spec: DictConfig,
    data_dir: str | Path,
    n_labeled: int,
    seed: int,
    val_fraction: float,
    with_ood: bool = True,
    n_unlabeled: int | None = 0,
) -> RunData:
    """Verify, split and load the dataset of registry entry `spec`, then its out-of-domain sets
    that are present (3D datasets list none).

    >>> data = load_run_data(dataset_spec("jsrt"), "../shared/datasets", n_labeled=9, seed=0,
    ...                      val_fraction=0.2)
    >>> len(data.train), len(data.val), sorted(data.ood)
    (7, 2, ['nlm_mc', 'nlm_sz'])
    """
    codec = codec_for(spec.dims)
    root = dataset_root(spec, data_dir)
    ids = verified_ids(spec, root, training=True)
    table, extra = read_split_table(root), sorted(extra_images(root, codec))
    if extra:  # the pool's unlabeled images first, then the unlabeled/ folder's
        n_pool = len(make_splits(ids, spec, n_labeled, seed, val_fraction, table, None).unlabeled)
        splits = make_splits(
            ids, spec, n_labeled, seed, val_fraction, table, pool_share(n_unlabeled, n_pool)
        )
        splits = add_extra_images(splits, extra, n_unlabeled, n_pool, root)
    else:
        splits = make_splits(ids, spec, n_labeled, seed, val_fraction, table, n_unlabeled)
    channels = int(spec.channels)
    data = RunData(
        splits=splits,
        train=codec.load(root, splits.train, channels),
        val=codec.load(root, splits.val, channels),
        test=codec.load(root, splits.test, channels),
    )
    data.ood_absent = absent_ood(spec, data_dir) if with_ood else {}
    for name, why in data.ood_absent.items():
        log.warning("out-of-domain set %s of %s: %s", name, spec.name, why)
    for name in [n for n in spec.ood if n not in data.ood_absent] if with_ood else []:
        ood_spec = dataset_spec(name)
        ood_root = dataset_root(ood_spec, data_dir)
        # OOD images are read with the training set's channels: the network's input is fixed
        data.ood[name] = codec.load(ood_root, verified_ids(ood_spec, ood_root), channels)
    return data
