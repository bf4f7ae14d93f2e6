"""GenSeg: generator, discriminator and segmenter trained end to end, with the generator's
architecture updated by the hypergradient of the segmenter's validation loss (`genseg_cli.mlo`).

Each step: D update; G weights update (GAN + L1); segmenter update on real + lambda * synthetic;
every `mlo.arch_every` steps, alpha (and with `mlo.generator_weights`, G's weights; with
`mlo.learn_synthetic_weight`, lambda) moves along d L_val(W'(A)) / dA, where W' is the segmenter
after an unrolled update on data made by G_A.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.profiler import record_function

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import exact_fp32
from genseg_cli.data.streams import GENERATOR_PAIRS
from genseg_cli.generators.pix2pix import pix2pix_adam
from genseg_cli.methods.base import (
    GAN_STEP,
    GENERATOR_FORWARD,
    SAMPLE_WEIGHTS,
    UPPER_STEP,
    TrainingContext,
)
from genseg_cli.methods.synthetic import SyntheticDataMethod
from genseg_cli.mlo.hypergrad import LowerProblem, hypergradient
from genseg_cli.mlo.levers import apply_images, apply_masks, build_levers, describe_levers
from genseg_cli.mlo.replay import GeneratorPass, replay
from genseg_cli.mlo.sample_weights import MODES as SAMPLE_WEIGHT_MODES
from genseg_cli.mlo.sample_weights import normalised_weights, sample_hypergradient
from genseg_cli.mlo.synthetic_weight import SyntheticWeight

log = logging.getLogger(__name__)
# a training step's generator pass as the upper step makes it again: its record, its jitter draw
StepPass = tuple[GeneratorPass | None, tuple[Tensor, Tensor] | None]


class GenSeg(SyntheticDataMethod):
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
        with record_function(GAN_STEP):
            # genseg+<ssl>: the objective's unlabeled batch also feeds a realism critic, if any
            losses = self.generator_update(real_masks, real_images, fake, batch)
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
        }

    def state_dict(self) -> dict:
        return {**super().state_dict(), "steps_done": self.steps_done, "anchor": self.anchor}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps_done = state["steps_done"]
        self.anchor = state.get("anchor", [])

    def _has_upper_targets(self) -> bool:
        return any(
            o is not None
            for o in (
                self.arch_optimizer,
                self.feedback_optimizer,
                self.weight_optimizer,
                self.lever_optimizer,
            )
        )

    def _synthesise_for_upper(
        self, new_masks: Tensor, draws: list | None = None, step: StepPass | None = None
    ):
        """The synthetic pairs as a function for the hypergradient: images, or (images, masks)
        with levers (whose mask transforms also move the targets). With `step` (the training
        pass's record and jitter draw), the images that pass made (`genseg_cli.mlo.replay`);
        without, the new masks alone. The generator's running statistics stay as they were."""
        recorded, jitter = step if step is not None else (None, None)
        if step is None:  # the same draw for every pass of the step
            jitter = self.draw_jitter(new_masks.shape[0])
        if draws is None:
            draws = [lever.draw(new_masks.shape[0]) for lever in self.levers]

        def exact(masks: Tensor) -> Tensor:
            return self.recipe.synthesise(masks, exact=True)

        def run() -> Tensor | tuple[Tensor, Tensor]:  # fp32 and in the graph
            if not len(self.levers):
                return self.jittered(replay(self.generator, exact, new_masks, recorded), jitter)
            masks = apply_masks(self.levers, new_masks, draws)
            images = apply_images(
                self.levers, replay(self.generator, exact, masks, recorded), draws
            )
            return self.jittered(images, jitter), masks

        return run

    def upper_targets(self) -> tuple[list[Tensor], ...]:
        """The upper level's parameters: (architecture, generator weights, levers, lambda), each
        empty when that target is off; lambda last."""
        alphas = self.recipe.upper_parameters() if self.arch_optimizer else []
        weights = self.recipe.weight_parameters() if self.feedback_optimizer else []
        levers = list(self.levers.parameters())
        learned = self.learned_weight
        lambdas = list(learned.parameters()) if learned is not None else []
        return alphas, weights, levers, lambdas

    def upper_hypergradient(
        self,
        images: Tensor,
        masks: Tensor,
        new_masks: Tensor,
        draws: list | None = None,
        step: StepPass | None = None,
    ) -> tuple[list[Tensor], Tensor]:
        """d L_val(W'(targets)) / d targets for `upper_targets()` (flattened in that order), and
        the validation loss, by `mlo.hypergrad`; nothing is updated. `step`: the training pass
        whose synthetic images the look-ahead uses (see `_synthesise_for_upper`)."""
        targets = [t for group in self.upper_targets() for t in group]
        learned = self.learned_weight
        # bf16 double backward loses the direction (cosine 0.38-0.66 with fp32 on three JSRT
        # batches: scripts/hypergrad_accuracy.py), so the upper step runs in fp32 unless
        # mlo.upper_precision=auto asks for the run's autocast; finite differences are fp32
        autocast = (
            self.runtime.autocast
            if self.mlo.hypergrad == "second_order" and self.mlo.upper_precision == "auto"
            else contextlib.nullcontext
        )
        problem = LowerProblem(
            self.segmenter,
            self.loss,
            (images, masks),
            new_masks,
            self.val,
            learned() if learned is not None else self.synthetic_weight,
            autocast,
        )
        self.segmenter.train()
        # fp32 is IEEE fp32 here, also where the run lets CUDA use TF32
        precision = exact_fp32() if autocast is contextlib.nullcontext else contextlib.nullcontext()
        with precision:
            return hypergradient(
                self.mlo.hypergrad,
                problem,
                self._synthesise_for_upper(new_masks, draws, step),
                targets,
                float(self.mlo.xi),
                int(self.mlo.unroll_steps),
                fd_radius=float(self.mlo.fd_radius),
            )

    def upper_update(
        self,
        images: Tensor,
        masks: Tensor,
        new_masks: Tensor,
        draws: list | None = None,
        step: StepPass | None = None,
    ) -> dict[str, float]:
        """One step of the upper level along the hypergradient of the validation loss
        (`new_masks` as drawn, before the levers; `draws`: the levers' draws of this step;
        `step`: the record of this step's generator pass and its jitter draw)."""
        alphas, weights, _, lambdas = self.upper_targets()
        targets = [t for group in self.upper_targets() for t in group]
        grads, val_loss = self.upper_hypergradient(images, masks, new_masks, draws, step)
        for param, grad in zip(targets, grads, strict=True):
            param.grad = grad.detach()
        if self.anchor:  # trust region: d/dtheta of rho/2 * |theta - theta_pretrained|^2
            for param, anchor in zip(weights, self.anchor, strict=True):
                param.grad.add_(param.detach() - anchor, alpha=self.trust_region)
        optimizers = (
            self.arch_optimizer,
            self.feedback_optimizer,
            self.weight_optimizer,
            self.lever_optimizer,
        )
        for optimizer in optimizers:
            if optimizer is not None:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        out = {"loss/val_upper": float(val_loss)}
        if alphas:
            out["hypergrad/alpha_norm"] = float(
                torch.cat([g.flatten() for g in grads[: len(alphas)]]).norm()
            )
            out.update(self.alpha_weights())
        out.update(describe_levers(self.levers))
        if lambdas:
            out["hypergrad/synthetic_weight"] = float(grads[-1])
            out["mlo/synthetic_weight"] = self.learned_weight.value
        return out

    def finish(self, run_dir: Path) -> dict:
        out = super().finish(run_dir)
        if len(self.levers):
            out["levers"] = describe_levers(self.levers)
        if self.learned_weight is not None:
            out["synthetic_weight"] = {
                "initial": self.synthetic_weight,
                "final": self.learned_weight.value,
            }
        return out

    def alpha_weights(self) -> dict[str, float]:
        """softmax(alpha) per searchable layer and candidate, for history.csv / alpha.csv."""
        return {
            f"alpha/{entry['layer']}/{op}": float(w)
            for entry in self.recipe.describe().get("architecture", [])
            for op, w in zip(entry["candidates"], entry["weights"], strict=True)
        }
