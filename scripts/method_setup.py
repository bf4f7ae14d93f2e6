"""What the measuring scripts share: a method named as on the command line (`genseg+fixmatch`,
`genseg:mlo.sample_weights=difference`), its run data and the method prepared for training, as
`genseg train` would build them but without a run folder.

Imported by scripts/benchmark_methods.py, scripts/profile_methods.py and
scripts/hypergrad_accuracy.py (Python puts a script's own folder on sys.path).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from omegaconf import DictConfig

from genseg_cli.core.runtime import Runtime, resolve_runtime
from genseg_cli.data.run_data import RunData, load_run_data
from genseg_cli.engine.loop import build_method, training_context
from genseg_cli.methods.base import Method, TrainingContext


def overrides_of(name: str) -> list[str]:
    """`genseg+fixmatch` -> method=genseg ssl=fixmatch, without pre-training; a variant's own
    overrides follow a colon, comma-separated:
    `genseg:mlo.sample_weights=difference` -> method=genseg ssl=none mlo.sample_weights=..."""
    name, _, extra = name.partition(":")
    method, _, objective = name.partition("+")
    out = [f"method={method}", f"ssl={objective or 'none'}", *filter(None, extra.split(","))]
    return out if method == "baseline" else [*out, "method.pretrain.steps=0"]


def run_data(cfg: DictConfig, seed: int = 0) -> RunData:
    """The run's splits and samples (no out-of-domain sets: nothing here scores them)."""
    return load_run_data(
        cfg.dataset,
        cfg.paths.data_dir,
        int(cfg.n_labeled),
        seed,
        float(cfg.val_fraction),
        with_ood=False,
        n_unlabeled=cfg.get("n_unlabeled"),
    )


def runtime_of(cfg: DictConfig, precision: str | None = None) -> Runtime:
    """The runtime `genseg train` would pick (device, precision, memory format), with its
    thread count (`trainer.num_threads`) applied."""
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    chosen = precision or cfg.trainer.precision
    return resolve_runtime(cfg.trainer.device, chosen, cfg.trainer.channels_last)


def prepare(
    method: Method, cfg: DictConfig, data: RunData, folder: Path | None = None
) -> TrainingContext:
    """`method.prepare` (pre-training, previews) in `folder`, or a temporary run folder; its
    context."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        context = training_context(cfg, data, folder)
        method.prepare(context)
        return context
    with tempfile.TemporaryDirectory() as tmp:
        context = training_context(cfg, data, Path(tmp))
        method.prepare(context)
    return context


def prepared_method(
    cfg: DictConfig, data: RunData, runtime: Runtime
) -> tuple[Method, TrainingContext]:
    """The method built and prepared, as a training run starts it."""
    method = build_method(cfg, runtime)
    return method, prepare(method, cfg, data)
