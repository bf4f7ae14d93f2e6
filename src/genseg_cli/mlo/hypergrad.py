"""Hypergradient of the validation loss with respect to the generator (multi-level optimisation).

GenSeg's upper level minimises L_val(W*(A)) over the generator architecture A, where W are the
segmenter's weights trained on real pairs plus synthetic pairs (G_A(m'), m'). W*(A) is approximated
by unrolling: W' = W - xi * grad_W L_train(W, A), and the gradient reaches A only through the
synthetic images, which therefore stay in the autograd graph here (no detach, no uint8 round trip).

Two estimators (`mlo.hypergrad`):
- `second_order`: differentiate through the unrolled step(s) exactly (double backward).
- `finite_difference`: the DARTS approximation of the mixed second derivative,
  dL_val/dA ~= -xi / (2 eps) * [grad_A L_train(W + eps v, A) - grad_A L_train(W - eps v, A)],
  with v = grad_W' L_val(W') and eps = r / |v|: the weights move by r (`mlo.fd_radius`) in norm.
  DARTS' r = 0.01 is too coarse for a real segmenter: on GenSeg's own wiring (smp UNet, searchable
  generator, JSRT; tests/mlo/test_real_wiring.py) its relative error against the exact
  hypergradient was 0.054 (scripts/hypergrad_accuracy.py) and 0.4-1.07 in an audit at other
  points; r = 1e-3 gave 7e-4 in fp32 (1e-4: 1.1e-3, 1e-5: 1.2e-2 as fp32 rounding takes over).
  It runs in fp32: differences of gradients drown in bf16 rounding. On a ReLU segmenter they
  cross activation kinks and disagree with second_order at any radius.

The same estimators give the hypergradient of any upper-level parameter that enters L_train only:
the architecture, the generator's weights, or a learned synthetic weight lambda
(`genseg_cli.mlo.synthetic_weight`).

The segmenter is evaluated with torch.func.functional_call on substituted weights; its batch-norm
buffers are cloned so that these look-ahead passes leave the real running statistics untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.func import functional_call

from genseg_cli.nets.losses import real_plus_synthetic_loss

Params = dict[str, Tensor]


@dataclass
class LowerProblem:
    """What the lower level (segmenter training) needs: the net, its loss and the batches.

    `real` and `val` are (images, masks); `new_masks` are the masks the synthetic images are made
    from; `synthetic_weight` is lambda in L_train = L(real) + lambda * L(synthetic): a float, or
    a tensor in the graph of an upper-level parameter (`genseg_cli.mlo.synthetic_weight`) whose
    hypergradient is then wanted too.
    """

    segmenter: nn.Module
    loss: nn.Module
    real: tuple[Tensor, Tensor]
    new_masks: Tensor
    val: tuple[Tensor, Tensor]
    synthetic_weight: float | Tensor = 1.0
    # segmenter forward passes may run under autocast (second_order only: finite differences
    # of gradients drown in bf16 rounding); losses and the unrolled update stay in fp32
    autocast: Callable[[], AbstractContextManager] = nullcontext


def segmenter_call(
    problem: LowerProblem, params: Params, buffers: Params, images: Tensor
) -> Tensor:
    """The segmenter's logits with substituted weights and buffers, under the autocast."""
    with problem.autocast():
        return functional_call(problem.segmenter, {**params, **buffers}, (images,))


def train_loss(problem: LowerProblem, params: Params, buffers: Params, synthetic: Tensor) -> Tensor:
    """L_train(W, A) on real + synthetic images, one forward pass (shared batch statistics)."""
    images, masks = problem.real
    logits = segmenter_call(problem, params, buffers, torch.cat([images, synthetic]))
    return real_plus_synthetic_loss(
        problem.loss,
        logits,
        torch.cat([masks, problem.new_masks]),
        images.shape[0],
        problem.synthetic_weight,
    )


def val_loss(problem: LowerProblem, params: Params, buffers: Params) -> Tensor:
    images, masks = problem.val
    return problem.loss(segmenter_call(problem, params, buffers, images), masks)


def start_point(problem: LowerProblem) -> tuple[Params, Params]:
    """The segmenter's weights as leaves of a new graph, and a copy of its buffers (batch-norm
    statistics) that look-ahead passes may update without touching the real ones."""
    params = {n: p.detach().requires_grad_(True) for n, p in problem.segmenter.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in problem.segmenter.named_buffers()}
    return params, buffers


def _synthetic_pairs(
    problem: LowerProblem, synthesise: Callable[[], Tensor | tuple[Tensor, Tensor]]
) -> tuple[LowerProblem, Tensor]:
    """Run `synthesise`: images, or (images, masks) when a lever also moves the new masks (then
    the problem's targets are those masks, in the graph of the lever)."""
    out = synthesise()
    if isinstance(out, tuple):
        images, masks = out
        return replace(problem, new_masks=masks), images
    return problem, out


def _sgd_step(params: Params, loss: Tensor, xi: float, create_graph: bool) -> Params:
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
    return {n: p - xi * g for (n, p), g in zip(params.items(), grads, strict=True)}


def second_order(
    problem: LowerProblem,
    synthesise: Callable[[], Tensor | tuple[Tensor, Tensor]],
    targets: list[Tensor],
    xi: float,
    unroll_steps: int = 1,
) -> tuple[list[Tensor], Tensor]:
    """Exact d L_val(W_K(A)) / d targets through `unroll_steps` differentiable SGD steps.

    >>> alphas = generator.arch_parameters()
    >>> grads, lval = second_order(problem, lambda: generator(new_masks), alphas, xi=1e-3)
    """
    params, buffers = start_point(problem)
    problem, synthetic = _synthetic_pairs(problem, synthesise)
    for _ in range(unroll_steps):
        params = _sgd_step(params, train_loss(problem, params, buffers, synthetic), xi, True)
    lval = val_loss(problem, params, buffers)
    grads = torch.autograd.grad(lval, targets, allow_unused=True)
    return [
        torch.zeros_like(t) if g is None else g for t, g in zip(targets, grads, strict=True)
    ], lval.detach()


def finite_difference(
    problem: LowerProblem,
    synthesise: Callable[[], Tensor | tuple[Tensor, Tensor]],
    targets: list[Tensor],
    xi: float,
    unroll_steps: int = 1,
    fd_radius: float = 1.0e-3,
) -> tuple[list[Tensor], Tensor]:
    """DARTS' finite-difference estimate of d L_val(W'(A)) / d targets (one unrolled step)."""
    if unroll_steps != 1:
        raise ValueError(
            "mlo.hypergrad=finite_difference supports mlo.unroll_steps=1 only; "
            "use mlo.hypergrad=second_order for longer unrolls"
        )
    params, buffers = start_point(problem)
    problem, synthetic = _synthetic_pairs(problem, synthesise)
    # the look-ahead step is constant in the targets; a learned lambda (and lever-made masks)
    # enter it detached, so this backward pass does not free the graph the two shifted passes
    # below still need
    constant = replace(
        problem,
        synthetic_weight=_detached(problem.synthetic_weight),
        new_masks=problem.new_masks.detach(),
    )
    look_ahead_loss = train_loss(constant, params, buffers, synthetic.detach())
    stepped = _sgd_step(params, look_ahead_loss, xi, False)
    stepped = {n: p.detach().requires_grad_(True) for n, p in stepped.items()}
    lval = val_loss(problem, stepped, buffers)
    v = torch.autograd.grad(lval, list(stepped.values()))
    eps = fd_radius / torch.cat([g.flatten() for g in v]).norm().clamp_min(1e-12)

    def grad_at(sign: float) -> tuple[Tensor, ...]:
        shifted = {
            n: (p + sign * eps * g).detach() for (n, p), g in zip(params.items(), v, strict=True)
        }
        loss = train_loss(problem, shifted, buffers, synthetic)
        return torch.autograd.grad(loss, targets, retain_graph=True, allow_unused=True)

    plus, minus = grad_at(1.0), grad_at(-1.0)
    grads = [
        torch.zeros_like(t) if a is None else -xi * (a - b) / (2 * eps)
        for t, a, b in zip(targets, plus, minus, strict=True)
    ]
    return grads, lval.detach()


def _detached(weight: float | Tensor) -> float | Tensor:
    return weight.detach() if isinstance(weight, Tensor) else weight


ESTIMATORS = {"second_order": second_order, "finite_difference": finite_difference}


def hypergradient(
    mode: str,
    problem: LowerProblem,
    synthesise: Callable[[], Tensor | tuple[Tensor, Tensor]],
    targets: list[Tensor],
    xi: float,
    unroll_steps: int = 1,
    fd_radius: float = 1.0e-3,
) -> tuple[list[Tensor], Tensor]:
    """Dispatch on `mlo.hypergrad`; returns (gradients for `targets`, the validation loss).
    `fd_radius`: the weight perturbation's norm for finite_difference (unused by second_order)."""
    if mode == "second_order":
        return second_order(problem, synthesise, targets, xi, unroll_steps)
    if mode == "finite_difference":
        return finite_difference(problem, synthesise, targets, xi, unroll_steps, fd_radius)
    raise ValueError(f"mlo.hypergrad={mode} is not one of {', '.join(ESTIMATORS)}")
