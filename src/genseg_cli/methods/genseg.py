"""GenSeg: generator, discriminator and segmenter trained end to end, with the generator's
architecture updated by the hypergradient of the segmenter's validation loss (`genseg_cli.mlo`).

Each step: D update; G weights update (GAN + L1); segmenter update on real + lambda * synthetic;
every `mlo.arch_every` steps, alpha (and with `mlo.generator_weights`, G's weights; with
`mlo.learn_synthetic_weight`, lambda; with `generator.pseudo_pairs.learn_weight`, the pseudo
pairs' weight in G's loss) moves along d L_val(W'(A)) / dA, where W' is the segmenter after an
unrolled update on data made by G_A (the upper step: `genseg_cli.methods.genseg_upper`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.profiler import record_function

from genseg_cli.core.errors import GensegError
from genseg_cli.data.streams import GENERATOR_PAIRS
from genseg_cli.generators.pix2pix import pix2pix_adam
from genseg_cli.methods.base import (
    GAN_STEP,
    GENERATOR_FORWARD,
    SAMPLE_WEIGHTS,
    UPPER_STEP,
    TrainingContext,
)
from genseg_cli.methods.genseg_upper import UpperLevel
from genseg_cli.methods.synthetic import SyntheticDataMethod
from genseg_cli.mlo.hypergrad import LowerProblem
from genseg_cli.mlo.levers import apply_images, apply_masks, build_levers, describe_levers
from genseg_cli.mlo.pseudo_trust import PseudoTrust
from genseg_cli.mlo.replay import GeneratorPass
from genseg_cli.mlo.sample_weights import MODES as SAMPLE_WEIGHT_MODES
from genseg_cli.mlo.sample_weights import normalised_weights, sample_hypergradient
from genseg_cli.mlo.synthetic_weight import SyntheticWeight

log = logging.getLogger(__name__)


class GenSeg(UpperLevel, SyntheticDataMethod):
    """End-to-end GenSeg with a real upper level.

    >>> method = instantiate(cfg.method, _partial_=True)(segmenter=net, optimizer=..., ...)
    >>> method.train_step(batch)   # {'loss/seg': .., 'loss/D': .., 'loss/val_upper': .., ...}
    """

    name = "genseg"
    trains_generator = True

    def __init__(self, *, mlo: DictConfig, end_to_end_lr: float, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.generator_cfg.get("skip_augment"):  # the GAN step learns from pairs of its own
            self.streams = (*self.streams, GENERATOR_PAIRS)
        self.mlo = mlo
        self.end_to_end_lr = float(end_to_end_lr)
        upper = self.recipe.upper_parameters()
        self.arch_optimizer = (
            torch.optim.Adam(
                upper, lr=mlo.arch_lr, betas=(0.5, 0.999), weight_decay=mlo.arch_weight_decay
            )
            if upper
            else None
        )
        self.feedback_optimizer = (
            pix2pix_adam(self.recipe.weight_parameters(), mlo.generator_lr)
            if mlo.generator_weights
            else None
        )
        self.learned_weight = (
            SyntheticWeight(self.synthetic_weight, mlo.synthetic_weight_max).to(self.runtime.device)
            if mlo.get("learn_synthetic_weight")
            else None
        )
        self.weight_optimizer = (
            pix2pix_adam(self.learned_weight.parameters(), mlo.synthetic_weight_lr)
            if self.learned_weight is not None
            else None
        )
        try:
            spec = self.spec
            levers = build_levers(mlo, spec.dims, spec.mask_channels, spec.image_channels)
        except ValueError as err:
            raise GensegError(str(err)) from None
        self.levers = levers.to(self.runtime.device)
        self.lever_optimizer = (
            torch.optim.Adam(self.levers.parameters(), lr=mlo.lever_lr) if len(levers) else None
        )
        self.pseudo_trust, self.trust_optimizer = self._pseudo_trust(mlo)
        self.trust_region = float(mlo.trust_region)
        self.anchor: list[Tensor] = []  # the pre-trained weights the trust region pulls toward
        if mlo.upper_precision not in ("fp32", "auto"):
            raise GensegError(f"mlo.upper_precision={mlo.upper_precision} is not one of fp32, auto")
        if mlo.hypergrad == "finite_difference":
            log.warning(
                "mlo.hypergrad=finite_difference: on ReLU segmenters differences of gradients "
                "cross activation kinks, and its direction disagrees with the exact hypergradient "
                "(cosine -0.44..0.29 on JSRT: scripts/hypergrad_accuracy.py); prefer second_order"
            )
        self.sample_weights = str(mlo.get("sample_weights") or "none")
        if self.sample_weights not in SAMPLE_WEIGHT_MODES:
            raise GensegError(
                f"mlo.sample_weights={self.sample_weights} is not one of "
                f"{', '.join(SAMPLE_WEIGHT_MODES)}"
            )
        self.steps_done = 0
        if (
            not self._has_upper_targets() and self.sample_weights == "none"
        ):  # genseg would silently be separate with a moving G
            raise GensegError(
                f"method=genseg with generator={self.generator_cfg.get('name')} gives the upper "
                "level nothing to learn (no architecture weights); set "
                "mlo.learn_synthetic_weight=true or mlo.generator_weights=true, name levers in "
                "mlo.levers, set mlo.sample_weights=difference, use a searchable generator, or "
                "train method=separate"
            )

    def _pseudo_trust(
        self, mlo: DictConfig
    ) -> tuple[PseudoTrust | None, torch.optim.Optimizer | None]:
        """The pseudo pairs' weight as an upper-level parameter and its optimiser, with
        generator.pseudo_pairs.learn_weight (None, None without)."""
        node = self.generator_cfg.get("pseudo_pairs") or {}
        if not node.get("learn_weight", False):
            return None, None
        if self.pseudo is None:
            raise GensegError(
                "generator.pseudo_pairs.learn_weight=true needs pseudo pairs: set "
                "generator.pseudo_pairs.weight above 0 (the weight it starts from)"
            )
        if not self.recipe.tangent_along_weights:
            raise GensegError(
                f"generator.pseudo_pairs.learn_weight=true: generator="
                f"{self.generator_cfg.get('name')} cannot differentiate its step in the pairs' "
                "weights; use generator=searchable or set generator.pseudo_pairs.learn_weight=false"
            )
        try:
            trust = PseudoTrust(self.pseudo.weight, float(mlo.pseudo_weight_max))
        except ValueError as err:
            raise GensegError(str(err)) from None
        trust = trust.to(self.runtime.device)
        self.pseudo.learned = True
        return trust, pix2pix_adam(trust.parameters(), mlo.pseudo_weight_lr)

    def current_synthetic_weight(self) -> float:
        """lambda for this step: the learned one when the upper level learns it, else fixed."""
        if self.learned_weight is None:
            return self.synthetic_weight
        return self.learned_weight.value

    def prepare(self, context: TrainingContext) -> None:
        super().prepare(context)
        self.recipe.set_learning_rate(self.end_to_end_lr)
        self.val = tuple(
            t.to(self.runtime.device)
            for t in (context.val_batch["image"], context.val_batch["mask"])
        )
        if self.runtime.channels_last:
            self.val = (self.val[0].contiguous(memory_format=torch.channels_last), self.val[1])
        if self.feedback_optimizer is not None and self.trust_region > 0:
            self.anchor = [p.detach().clone() for p in self.recipe.weight_parameters()]

    def train_step(self, batch: dict) -> dict[str, float]:
        self.steps_done += 1
        images, masks = self.to_device(batch)
        drawn_masks = batch["new_mask"].to(self.runtime.device)
        # the levers' randomness: one draw per step, shared by the update and the upper step
        draws = [lever.draw(drawn_masks.shape[0]) for lever in self.levers]
        with torch.no_grad():
            new_masks = apply_masks(self.levers, drawn_masks, draws)
        real_images, real_masks = self.generator_pairs(batch, images, masks)
        upper = self.steps_done % int(self.mlo.arch_every) == 0 and self._has_upper_targets()
        # what the upper step needs to make this pass's synthetic images again
        recorded = GeneratorPass.record(real_masks, self.runtime.device) if upper else None
        self.generator.train()
        with record_function(GENERATOR_FORWARD):
            both = self.synthesise(torch.cat([real_masks, new_masks]))  # one G pass for both uses
        fake, synthetic = both[: real_masks.shape[0]], both[real_masks.shape[0] :]
        trust = upper and self.pseudo_trust is not None
        if self.pseudo_trust is not None:
            self.pseudo.weight = self.pseudo_trust.value
        with record_function(GAN_STEP):
            # genseg+<ssl>: the objective's unlabeled batch also feeds a realism critic, if any
            losses = self.generator_update(real_masks, real_images, fake, batch, tangent=trust)
        # d theta'/dw of this GAN step, kept (detached) for the upper step
        self.trust_tangent = self.recipe.tangent if trust else None
        with torch.no_grad():
            synthetic = apply_images(self.levers, synthetic.detach(), draws)
        jitter = self.draw_jitter(new_masks.shape[0])
        synthetic = self.jittered(synthetic, jitter)
        weight: float | Tensor = self.current_synthetic_weight()
        if self.sample_weights != "none":
            with record_function(SAMPLE_WEIGHTS):
                per_sample, logs = self.reweight(images, masks, synthetic, new_masks, weight)
            weight = weight * per_sample
            losses.update(logs)
        losses.update(
            self.segmentation_update(
                images, masks, synthetic, new_masks, weight, unlabeled=self.unlabeled_images(batch)
            )
        )
        if upper:
            with record_function(UPPER_STEP):
                losses.update(
                    self.upper_update(images, masks, drawn_masks, draws, (recorded, jitter))
                )
        return losses

    def generator_pairs(self, batch: dict, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """The real pairs the GAN step learns from: the generator's own stream when it skips
        some of the augmentation (generator.skip_augment), else the segmenter's pairs."""
        if GENERATOR_PAIRS not in self.streams:
            return images, masks
        pairs = {"image": batch["generator_image"], "mask": batch["generator_mask"]}
        return self.to_device(pairs)

    def reweight(
        self, images: Tensor, masks: Tensor, synthetic: Tensor, new_masks: Tensor, weight: float
    ) -> tuple[Tensor, dict[str, float]]:
        """Per-sample weights (mean 1, or all 0) of this step's synthetic pairs, in fp32 on the
        whole validation set (`genseg_cli.mlo.sample_weights`), and what history.csv logs."""
        problem = LowerProblem(
            self.segmenter, self.loss, (images, masks), new_masks, self.val, weight
        )
        self.segmenter.train()
        raw, _ = sample_hypergradient(
            self.sample_weights,
            problem,
            synthetic,
            float(self.mlo.xi),
            float(self.mlo.get("sample_weights_radius", 1e-3)),
        )
        per_sample = normalised_weights(raw)
        logs = {
            "mlo/sample_weight_max": float(per_sample.max()),
            "mlo/sample_weight_zero": float((per_sample == 0).float().mean()),
        }
        return per_sample.to(synthetic.dtype), logs

    def stateful(self) -> dict:
        return {
            **super().stateful(),
            "arch_optimizer": self.arch_optimizer,
            "feedback_optimizer": self.feedback_optimizer,
            "synthetic_weight": self.learned_weight,
            "weight_optimizer": self.weight_optimizer,
            "levers": self.levers if len(self.levers) else None,
            "lever_optimizer": self.lever_optimizer,
            "pseudo_trust": self.pseudo_trust,
            "trust_optimizer": self.trust_optimizer,
        }

    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done, "anchor": self.anchor}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = state["steps_done"]
        self.anchor = state.get("anchor", [])

    def finish(self, run_dir: Path) -> dict:
        out = super().finish(run_dir)
        if len(self.levers):
            out["levers"] = describe_levers(self.levers)
        if self.learned_weight is not None:
            out["synthetic_weight"] = {
                "initial": self.synthetic_weight,
                "final": self.learned_weight.value,
            }
        if self.pseudo_trust is not None:
            node = self.generator_cfg.pseudo_pairs
            out["pseudo_weight"] = {
                "initial": float(node.weight),
                "final": self.pseudo_trust.value,
            }
        return out
