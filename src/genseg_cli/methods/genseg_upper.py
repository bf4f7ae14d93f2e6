"""GenSeg's upper step: d L_val(W'(targets)) / d targets, and one step of every upper-level
optimiser along it (docs/upper-level.md).

The targets are named: `architecture` (alpha), `generator_weights` (mlo.generator_weights; also
differentiated, not stepped, when only the pseudo pairs' weight needs them), `levers`,
`synthetic_weight` (lambda) and `pseudo_weight` (beta of the pseudo pairs' weight, whose
hypergradient is the chain through the GAN step: `genseg_cli.mlo.pseudo_trust`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

from genseg_cli.core.runtime import exact_fp32
from genseg_cli.mlo.hypergrad import LowerProblem, hypergradient
from genseg_cli.mlo.levers import apply_images, apply_masks, describe_levers
from genseg_cli.mlo.pseudo_trust import trust_hypergradient
from genseg_cli.mlo.replay import GeneratorPass, replay

# a training step's generator pass as the upper step makes it again: its record, its jitter draw
StepPass = tuple[GeneratorPass | None, tuple[Tensor, Tensor] | None]
# the targets `hypergradient` differentiates; `pseudo_weight` follows from `generator_weights`
DIFFERENTIATED = ("architecture", "generator_weights", "levers", "synthetic_weight")


class UpperLevel:
    """The upper step of `genseg_cli.methods.genseg.GenSeg` (a mixin: it reads the method's
    recipe, levers, optimisers, validation batch and `mlo` settings)."""

    trust_tangent: list[Tensor] | None = None  # this step's d theta'/dw, until the upper step

    def upper_optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        """Each upper-level target's optimiser (None: not stepped)."""
        return {
            "architecture": self.arch_optimizer,
            "generator_weights": self.feedback_optimizer,
            "levers": self.lever_optimizer,
            "synthetic_weight": self.weight_optimizer,
            "pseudo_weight": self.trust_optimizer,
        }

    def _has_upper_targets(self) -> bool:
        return any(o is not None for o in self.upper_optimizers().values())

    def upper_targets(self) -> dict[str, list[Tensor]]:
        """The upper level's parameters by name, each empty when that target is off (or, for the
        pseudo pairs' weight, when this step's GAN update left no tangent)."""
        trust = self.pseudo_trust is not None and self.trust_tangent is not None
        learned = self.learned_weight
        return {
            "architecture": self.recipe.upper_parameters() if self.arch_optimizer else [],
            "generator_weights": (
                self.recipe.weight_parameters() if self.feedback_optimizer or trust else []
            ),
            "levers": list(self.levers.parameters()),
            "synthetic_weight": list(learned.parameters()) if learned is not None else [],
            "pseudo_weight": list(self.pseudo_trust.parameters()) if trust else [],
        }

    def _synthesise_for_upper(
        self, new_masks: Tensor, draws: list | None = None, step: StepPass | None = None
    ) -> Callable[[], Tensor | tuple[Tensor, Tensor]]:
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

    def upper_hypergradient(
        self,
        images: Tensor,
        masks: Tensor,
        new_masks: Tensor,
        draws: list | None = None,
        step: StepPass | None = None,
    ) -> tuple[dict[str, list[Tensor]], Tensor]:
        """d L_val(W'(targets)) / d targets for `upper_targets()`, by name, and the validation
        loss, by `mlo.hypergrad`; nothing is updated. `step`: the training pass whose synthetic
        images the look-ahead uses (see `_synthesise_for_upper`)."""
        named = self.upper_targets()
        targets = [t for name in DIFFERENTIATED for t in named[name]]
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
            flat, val_loss = hypergradient(
                self.mlo.hypergrad,
                problem,
                self._synthesise_for_upper(new_masks, draws, step),
                targets,
                float(self.mlo.xi),
                int(self.mlo.unroll_steps),
                fd_radius=float(self.mlo.fd_radius),
            )
        grads, start = {}, 0
        for name in DIFFERENTIATED:
            grads[name] = flat[start : start + len(named[name])]
            start += len(named[name])
        grads["pseudo_weight"] = []
        if named["pseudo_weight"]:  # dL/dbeta = <h, d theta'/dw> * dw/dbeta
            dw = trust_hypergradient(grads["generator_weights"], self.trust_tangent)
            beta = named["pseudo_weight"][0]
            grads["pseudo_weight"] = [(dw * self.pseudo_trust.slope()).to(beta)]
        return grads, val_loss

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
        named = self.upper_targets()
        if not any(named.values()):  # only the pseudo weight, and no pseudo pair this step
            return {}
        grads, val_loss = self.upper_hypergradient(images, masks, new_masks, draws, step)
        stepped = []
        for name, optimizer in self.upper_optimizers().items():
            if optimizer is None or not named[name]:
                continue
            for param, grad in zip(named[name], grads[name], strict=True):
                param.grad = grad.detach()
            stepped.append(optimizer)
        if self.anchor:  # trust region: d/dtheta of rho/2 * |theta - theta_pretrained|^2
            weights = named["generator_weights"]
            for param, anchor in zip(weights, self.anchor, strict=True):
                param.grad.add_(param.detach() - anchor, alpha=self.trust_region)
        for optimizer in stepped:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        self.trust_tangent = None
        out = {"loss/val_upper": float(val_loss)}
        if named["architecture"]:
            out["hypergrad/alpha_norm"] = float(
                torch.cat([g.flatten() for g in grads["architecture"]]).norm()
            )
            out.update(self.alpha_weights())
        out.update(describe_levers(self.levers))
        if named["synthetic_weight"]:
            out["hypergrad/synthetic_weight"] = float(grads["synthetic_weight"][0])
            out["mlo/synthetic_weight"] = self.learned_weight.value
        if named["pseudo_weight"]:
            out["hypergrad/pseudo_weight"] = float(grads["pseudo_weight"][0])
            out["mlo/pseudo_weight"] = self.pseudo_trust.value
        return out

    def alpha_weights(self) -> dict[str, float]:
        """softmax(alpha) per searchable layer and candidate, for history.csv / alpha.csv."""
        return {
            f"alpha/{entry['layer']}/{op}": float(w)
            for entry in self.recipe.describe().get("architecture", [])
            for op, w in zip(entry["candidates"], entry["weights"], strict=True)
        }
