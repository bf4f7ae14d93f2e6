"""`method=nnunet`: nnU-Net v2 trained by its own loop on the run's split, scored by genseg.

nnU-Net does not train step by step through `Method.train_step`: the loop hands it the whole run
(`train_and_predict`), and scores what it returns as it scores every method. This class holds
and checks the settings of conf/method/nnunet.yaml; `genseg_cli.engine.nnunet.runner` does the
work.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from torch import nn

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import Runtime
from genseg_cli.data.run_data import RunData
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.rules import Rule, flag, number, one_of, whole
from genseg_cli.methods.base import Method
from genseg_cli.semisup.base import UnlabeledObjective

CONFIGURATIONS = ("auto", "2d", "3d_fullres", "3d_lowres")
INSTALL = "pip install -e '.[nnunet]' (make setup installs it)"

RULES: dict[str, Rule] = {
    "configuration": Rule(one_of(*CONFIGURATIONS), "method.configuration=auto"),
    "epochs": Rule(whole(1), "method.epochs=30"),
    "iterations_per_epoch": Rule(whole(1), "method.iterations_per_epoch=50"),
    "val_iterations_per_epoch": Rule(whole(1), "method.val_iterations_per_epoch=10"),
    "save_every": Rule(whole(1), "method.save_every=1"),
    "checkpoint": Rule(one_of("final", "best"), "method.checkpoint=final"),
    "batch_size": Rule(whole(1, optional=True), "method.batch_size=2 (null: planned)"),
    "max_patch": Rule(whole(8, optional=True), "method.max_patch=64 (null: planned)"),
    "width": Rule(whole(1, optional=True), "method.width=8 (null: planned)"),
    "tta": Rule(flag(), "method.tta=false"),
    "tile_step_size": Rule(number(0.0, 1.0, closed=True), "method.tile_step_size=0.5"),
    "augment_workers": Rule(whole(0), "method.augment_workers=0"),
}


def nnunet_installed() -> bool:
    return importlib.util.find_spec("nnunetv2") is not None


class NnUNet(Method):
    """nnU-Net v2's settings for one run (conf/method/nnunet.yaml); see docs/nnunet.md."""

    name = "nnunet"
    streams: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        segmenter: nn.Module,
        optimizer: Any,
        scheduler: Any,
        runtime: Runtime,
        spec: DataSpec,
        grad_clip: float | None = None,
        unlabeled: UnlabeledObjective | None = None,
        name: str = "nnunet",
        backbone: str = "unet",
        extra_pairs: str | None = None,
        channel_names: list[str] | None = None,
        **settings: Any,
    ) -> None:
        # no Method.__init__: nnU-Net builds its own network, optimiser and schedule
        self.segmenter, self.runtime, self.spec, self.name = segmenter, runtime, spec, name
        self.unlabeled, self.optimizer, self.scheduler = None, None, None
        if unlabeled is not None:
            raise GensegError(
                "method=nnunet trains on the labelled pairs only; drop ssl= (or use ssl=none)"
            )
        if backbone != "unet":
            raise GensegError(
                f"backbone={backbone} does not apply to method=nnunet, which plans its own "
                "U-Net; leave backbone at unet"
            )
        unknown = sorted(set(settings) - set(RULES))
        if unknown:
            raise GensegError(
                f"method.{unknown[0]} is not a setting of method=nnunet; known: "
                f"{', '.join(sorted(RULES))}, extra_pairs, channel_names"
            )
        for key, rule in RULES.items():
            problem = rule.check(settings.get(key))
            if problem:
                raise GensegError(
                    f"method.{key}={settings.get(key)} {problem}; e.g. {rule.example}"
                )
        self.settings = settings
        self.extra_pairs = Path(extra_pairs).expanduser() if extra_pairs else None
        self.channel_names = list(channel_names) if channel_names else None
        self.configuration = self._configuration(settings["configuration"])

    def _configuration(self, chosen: str) -> str:
        if chosen == "auto":
            return "2d" if self.spec.dims == 2 else "3d_fullres"
        if (chosen == "2d") != (self.spec.dims == 2):
            raise GensegError(
                f"method.configuration={chosen} does not fit the {self.spec.dims}D dataset "
                f"'{self.spec.name}'; use method.configuration=auto"
            )
        return chosen

    @property
    def steps(self) -> int:
        """Gradient steps of the whole budget."""
        return int(self.settings["epochs"]) * int(self.settings["iterations_per_epoch"])

    def preflight(self, cfg: DictConfig, data: RunData) -> None:
        """Checks before anything is written: nnunetv2 installed, a device nnU-Net trains on
        with the run's precision, channel names that fit, the extra pairs' folder."""
        if not nnunet_installed():
            raise GensegError(f"method=nnunet needs the nnunetv2 package: {INSTALL}")
        device = self.runtime.device.type
        if device not in ("cpu", "cuda"):
            raise GensegError(f"trainer.device={cfg.trainer.device}: nnU-Net trains on cpu or cuda")
        if device == "cuda" and str(cfg.trainer.precision) not in ("auto", "fp16"):
            raise GensegError(
                f"trainer.precision={cfg.trainer.precision}: on CUDA nnU-Net trains with its own "
                "fp16 mixed precision; set trainer.precision=auto"
            )
        channels = self.spec.image_channels
        if self.channel_names is not None and len(self.channel_names) != channels:
            raise GensegError(
                f"method.channel_names={self.channel_names} names {len(self.channel_names)} "
                f"channels, but dataset '{self.spec.name}' has {channels}"
            )
        if self.extra_pairs is not None:
            from genseg_cli.engine.nnunet.layout import check_extra_pairs

            check_extra_pairs(self.extra_pairs, self.spec)

    @property
    def precision(self) -> str:
        """What nnU-Net computes in: its own fp16 AMP on CUDA; on CPU, the run's precision."""
        return "fp16" if self.runtime.device.type == "cuda" else self.runtime.precision

    def train_and_predict(
        self, cfg: DictConfig, data: RunData, run_dir: Path
    ) -> tuple[dict, pd.DataFrame]:
        """Plan, preprocess and train nnU-Net on the run's split (or continue it with resume=),
        then score the test and out-of-domain sets: (what fit() returns, per-image scores)."""
        from genseg_cli.engine.nnunet.runner import run_nnunet

        return run_nnunet(cfg, self, data, run_dir)

    def train_step(self, batch: dict) -> dict[str, float]:
        raise NotImplementedError("nnU-Net trains in its own loop: train_and_predict")
