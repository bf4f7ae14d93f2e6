"""The batches of one run's training steps: every stream its method asks for, merged per step.

`genseg_cli.data.streams` names the streams; this module builds the asked-for ones from the run's
data and config and yields one dict per step with all of them (labelled pairs, new masks,
unlabeled images under "unlabeled_image", the generator's own pairs under "generator_image" and
"generator_mask"). Each stream has its own seeded sampler and pipelines,
so adding one never changes the numbers another draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError
from genseg_cli.data.augment import without_transforms
from genseg_cli.data.batches import training_batches, unlabeled_batches
from genseg_cli.data.run_data import RunData, load_unlabeled
from genseg_cli.data.spec import DataSpec
from genseg_cli.data.streams import GENERATOR_PAIRS, LABELLED, NEW_MASKS, UNLABELED
from genseg_cli.engine.restore import read_run
from genseg_cli.methods.base import Method

UNLABELED_SEED_OFFSET = 4  # seeds: +1 mask pipeline, +2 previews, +3 pre-training batches
PRETRAIN_UNLABELED_SEED_OFFSET = 5  # the unlabeled images a generator's pre-training reads
GENERATOR_PAIRS_SEED_OFFSET = 6  # the pairs a generator learns from during training


def generator_augment(cfg: DictConfig) -> DictConfig | None:
    """The augment group the generator's real pairs and unlabeled images go through: the run's
    `augment` without the transforms `generator.skip_augment` names (the run's group itself when
    it names none)."""
    skip = list((cfg.get("generator") or {}).get("skip_augment") or [])
    return without_transforms(cfg.augment, skip, "generator.skip_augment")


def check_unlabeled(cfg: DictConfig, method: Method, data: RunData) -> None:
    """Pre-flight: a method that learns from unlabeled images must have some; so must a
    generator with a realism term on them."""
    if data.splits.unlabeled:
        return
    there = (
        f"n_unlabeled={cfg.get('n_unlabeled')} leaves none in the pool of "
        f"'{cfg.dataset.name}' (n_labeled={cfg.n_labeled})"
    )
    if UNLABELED in method.streams:
        raise GensegError(
            f"ssl={cfg.ssl.name} learns from unlabeled images, but {there}; "
            "set n_unlabeled=null (all) or ssl=none"
        )
    recipe = getattr(method, "recipe", None)
    if recipe is not None and recipe.learns_from_unlabeled:
        raise GensegError(
            f"generator.unlabeled_realism={cfg.generator.unlabeled_realism} learns from "
            f"unlabeled images, but {there}; set n_unlabeled=null (all) or "
            "generator.unlabeled_realism=0"
        )


def check_teacher_run(cfg: DictConfig, data: RunData) -> None:
    """Pre-flight of self-training: the teacher run is of the same dataset and never trained or
    selected its checkpoint on one of this run's test images."""
    ssl = cfg.get("ssl")
    if not ssl or not ssl.get("teacher_run"):
        return
    _, teacher_cfg, splits = read_run(ssl.teacher_run)  # finished, written by genseg train
    if teacher_cfg.dataset.name != cfg.dataset.name:
        raise GensegError(
            f"ssl.teacher_run={ssl.teacher_run} is a run on '{teacher_cfg.dataset.name}', this "
            f"run is on '{cfg.dataset.name}'; give a teacher trained on the same dataset"
        )
    seen = set(splits.get("train", [])) | set(splits.get("val", []))
    leaked = sorted(seen & set(data.splits.test))
    if leaked:
        raise GensegError(
            f"ssl.teacher_run={ssl.teacher_run} trained on {len(leaked)} of this run's test "
            f"images (e.g. {leaked[0]}); give a teacher with the same seed and n_labeled"
        )


def pretraining_unlabeled(
    cfg: DictConfig, data: RunData, spec: DataSpec
) -> Callable[[int], Iterable[dict]] | None:
    """n -> n batches of the run's unlabeled images for a generator's pre-training (its own
    seed, the augment group's moves), or None when the split has none. Images are read on the
    first call, so runs that never ask pay nothing."""
    if not data.splits.unlabeled:
        return None

    def batches(n: int) -> Iterable[dict]:
        ids = data.splits.unlabeled
        samples = load_unlabeled(cfg.dataset, cfg.paths.data_dir, ids, spec)
        seed = int(cfg.seed) + PRETRAIN_UNLABELED_SEED_OFFSET
        return unlabeled_batches(samples, spec, n, seed, generator_augment(cfg))

    return batches


def step_batches(cfg: DictConfig, method: Method, data: RunData, steps: int) -> Iterator[dict]:
    """`steps` batch dicts holding every stream `method.streams` names."""
    spec, seed = method.spec, int(cfg.seed)
    labelled = training_batches(
        data.train,
        spec,
        steps,
        seed,
        cfg.augment if LABELLED in method.streams else None,
        cfg.get("mask_augment"),
        NEW_MASKS in method.streams,
    )
    streams: list[Iterable[dict]] = [labelled]
    if UNLABELED in method.streams:
        check_unlabeled(cfg, method, data)
        samples = load_unlabeled(cfg.dataset, cfg.paths.data_dir, data.splits.unlabeled, spec)
        seed_u = seed + UNLABELED_SEED_OFFSET
        streams.append(unlabeled_batches(samples, spec, steps, seed_u, cfg.augment))
    if GENERATOR_PAIRS in method.streams:
        pairs = training_batches(
            data.train, spec, steps, seed + GENERATOR_PAIRS_SEED_OFFSET, generator_augment(cfg)
        )
        streams.append({"generator_image": b["image"], "generator_mask": b["mask"]} for b in pairs)
    if len(streams) == 1:
        return iter(labelled)
    merged = zip(*streams, strict=True)
    return ({k: v for part in parts for k, v in part.items()} for parts in merged)
