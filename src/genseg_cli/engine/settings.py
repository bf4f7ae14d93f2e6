"""The settings a training run checks before any work: each key's type and range.

One table, `SETTINGS`, says what every numeric or enumerated key of the train config accepts.
`check_value` checks one command-line value (also each value of a sweep, before Hydra starts);
`check_settings` checks a composed config (a profile or experiment may set values too). Each
mistake is one line naming the key, the value and what it must be.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import DTYPES
from genseg_cli.data.registry import dataset_root, require_present
from genseg_cli.engine.encoder_weights import check_encoder_weights
from genseg_cli.engine.method_settings import METHOD_SETTINGS, check_combinations
from genseg_cli.engine.rules import Rule, at_least, number, one_of, whole  # noqa: F401
from genseg_cli.evaluation.evaluate import RESOLUTIONS

KEEP = ("best_val", "final")  # trainer.keep: which weights a run keeps and scores

SETTINGS: dict[str, Rule] = {
    "seed": Rule(whole(0), "seed=0"),
    "n_labeled": Rule(whole(1), "n_labeled=9 (images for train + validation)"),
    "n_unlabeled": Rule(whole(0, optional=True), "n_unlabeled=100 (null: all)"),
    "val_fraction": Rule(number(0.0, 1.0), "val_fraction=0.2"),
    "data.image_size": Rule(whole(8), "data.image_size=128"),
    "data.batch_size": Rule(whole(1), "data.batch_size=4"),
    "trainer.steps": Rule(whole(1), "trainer.steps=1500"),
    "trainer.val_every": Rule(whole(1), "trainer.val_every=100"),
    "trainer.log_every": Rule(whole(1), "trainer.log_every=50"),
    "trainer.checkpoint_every": Rule(whole(0), "trainer.checkpoint_every=250 (0: never)"),
    "trainer.stop_after": Rule(whole(1, optional=True), "trainer.stop_after=100"),
    "trainer.num_threads": Rule(whole(1, optional=True), "trainer.num_threads=1"),
    "trainer.grad_clip": Rule(number(0.0, optional=True), "trainer.grad_clip=1.0"),
    "trainer.precision": Rule(one_of("auto", "fp32", *DTYPES), "trainer.precision=auto"),
    "trainer.progress": Rule(one_of(True, False), "trainer.progress=false"),
    "trainer.keep": Rule(one_of(*KEEP), "trainer.keep=final"),
    "trainer.keep_last": Rule(one_of(True, False), "trainer.keep_last=true"),
    "evaluation.resolution": Rule(one_of(*RESOLUTIONS), "evaluation.resolution=original"),
    "evaluation.threshold": Rule(number(0.0, 1.0), "evaluation.threshold=0.5"),
    "evaluation.batch_size": Rule(whole(1), "evaluation.batch_size=16"),
    "evaluation.tstr_steps": Rule(whole(0), "evaluation.tstr_steps=300 (0: off)"),
    "evaluation.ood": Rule(one_of(True, False), "evaluation.ood=false"),
    # the method's groups (method, mlo, ssl, generator), the data and the optimiser
    **METHOD_SETTINGS,
}


def check_value(key: str, value: object) -> None:
    """Refuse a value `key` does not accept (keys without a rule accept anything).

    >>> check_value("n_labeled", 9.5)
    Traceback (most recent call last):
    GensegError: n_labeled=9.5 must be a whole number; e.g. n_labeled=9 (...)
    """
    rule = SETTINGS.get(key)
    problem = rule.check(value) if rule else None
    if problem:
        shown = (
            "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        )
        raise GensegError(f"{key}={shown} {problem}; e.g. {rule.example}")


def check_settings(cfg: DictConfig) -> None:
    """Check a composed train config before any work: every key of `SETTINGS`, that the config
    resolves, and that the dataset's folder is there."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        if key.startswith("dataset.root"):
            dataset_root(cfg.dataset, ".")  # says how to give dataset=folder its folder
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GensegError(f"the config cannot be resolved at {key}: {detail}") from None
    absent = object()
    for key in SETTINGS:  # a key of another choice (ssl.threshold with ssl=none) is absent
        value = OmegaConf.select(cfg, key, default=absent)
        if value is not absent:
            check_value(key, value)
    check_combinations(cfg)
    root = dataset_root(cfg.dataset, cfg.paths.data_dir)
    require_present(cfg.dataset, Path(root))
    check_encoder_weights(cfg.backbone)
