"""Per-sample weights of the synthetic pairs from the hypergradient ("learning to reweight").

Ren et al. (ICML 2018) weigh each training example by how much a small step on it would lower
the validation loss. Here the examples are the step's synthetic pairs; the training loss with
per-sample perturbations eps is

    L_train(W, eps) = L(real) + lambda * (1/n) * sum_i eps_i * l_i(W)

(one forward pass over real and synthetic images, as in the segmenter's update). At eps = 0 the
look-ahead step is W' = W - xi * grad L(real), and eps enters it only linearly, so the
hypergradient needs no second derivative:

    g_i = d L_val(W'(eps)) / d eps_i = -xi * lambda / n * < grad L_val(W'), grad l_i(W) >.

A pair whose gradient points the way the validation gradient does gets g_i < 0. The weights are
w_i = max(-g_i, 0), normalised to mean 1 within the batch; when no pair helps, every weight is 0
and the step learns from the real pairs alone (Ren et al.'s rule). The validation batch is the
whole validation set.

Two estimators of the inner products (`mlo.sample_weights`):
- `exact`: reverse mode, differentiating <grad L_train, v> with respect to per-sample
  multipliers (one double backward);
- `difference`: a central difference of each l_i along v = grad L_val(W'), two forward passes;
  unlike differences of gradients (DARTS' estimate), a loss is continuous, so ReLU kinks bend
  the estimate instead of breaking it (`scripts/hypergrad_accuracy.py --sample-weights` measures
  its cosine with `exact` on the real network).

    >>> raw, _ = sample_hypergradient("difference", problem, synthetic, xi=0.01)
    >>> normalised_weights(raw).mean()  # 1 (or 0 when no synthetic pair helps)
"""

from __future__ import annotations

import torch
from torch import Tensor

from genseg_cli.mlo.hypergrad import LowerProblem, Params, segmenter_call, start_point, val_loss
from genseg_cli.nets.losses import per_sample_losses

MODES = ("none", "exact", "difference")


def _losses(
    problem: LowerProblem, params: Params, buffers: Params, synthetic: Tensor
) -> tuple[Tensor, Tensor]:
    """(L(real), per-sample synthetic losses) from one forward pass over real + synthetic."""
    images, masks = problem.real
    n_real = images.shape[0]
    logits = segmenter_call(
        problem, params, {k: b.clone() for k, b in buffers.items()}, torch.cat([images, synthetic])
    )
    real = problem.loss(logits[:n_real], masks)
    return real, per_sample_losses(problem.loss, logits[n_real:], problem.new_masks)


def _look_ahead_direction(
    problem: LowerProblem, params: Params, buffers: Params, synthetic: Tensor, xi: float
) -> tuple[list[Tensor], Tensor]:
    """v = grad L_val(W') at W' = W - xi * grad L(real) (eps = 0), and L_val(W')."""
    real, _ = _losses(problem, params, buffers, synthetic)
    grads = torch.autograd.grad(real, list(params.values()))
    stepped = {
        n: (p - xi * g).detach().requires_grad_(True)
        for (n, p), g in zip(params.items(), grads, strict=True)
    }
    lval = val_loss(problem, stepped, {k: b.clone() for k, b in buffers.items()})
    return list(torch.autograd.grad(lval, list(stepped.values()))), lval.detach()


def inner_products_exact(
    problem: LowerProblem, params: Params, buffers: Params, synthetic: Tensor, v: list[Tensor]
) -> Tensor:
    """<v, grad l_i(W)> for every synthetic pair i, by reverse mode."""
    _, per_sample = _losses(problem, params, buffers, synthetic)
    multipliers = torch.zeros_like(per_sample, requires_grad=True)
    grads = torch.autograd.grad(
        (multipliers * per_sample).sum(), list(params.values()), create_graph=True
    )
    dot = sum((g * d).sum() for g, d in zip(grads, v, strict=True))
    return torch.autograd.grad(dot, multipliers)[0]


def inner_products_difference(
    problem: LowerProblem,
    params: Params,
    buffers: Params,
    synthetic: Tensor,
    v: list[Tensor],
    radius: float,
) -> Tensor:
    """<v, grad l_i(W)> for every synthetic pair i, by a central difference of l_i along v;
    the weights move by `radius` in norm."""
    norm = torch.cat([d.flatten() for d in v]).norm().clamp_min(1e-12)
    step = radius / norm
    with torch.no_grad():

        def at(sign: float) -> Tensor:
            shifted = {n: p + sign * step * d for (n, p), d in zip(params.items(), v, strict=True)}
            return _losses(problem, shifted, buffers, synthetic)[1]

        return (at(1.0) - at(-1.0)) / (2 * step)


def sample_hypergradient(
    mode: str, problem: LowerProblem, synthetic: Tensor, xi: float, radius: float = 1e-3
) -> tuple[Tensor, Tensor]:
    """g_i = d L_val(W'(eps)) / d eps_i at eps = 0 for each synthetic pair, and L_val(W').
    `problem.synthetic_weight` is lambda (a float)."""
    if mode not in MODES[1:]:
        raise ValueError(f"mlo.sample_weights={mode} is not one of {', '.join(MODES)}")
    params, buffers = start_point(problem)
    synthetic = synthetic.detach()
    v, lval = _look_ahead_direction(problem, params, buffers, synthetic, xi)
    if mode == "exact":
        dots = inner_products_exact(problem, params, buffers, synthetic, v)
    else:
        dots = inner_products_difference(problem, params, buffers, synthetic, v, radius)
    scale = xi * float(problem.synthetic_weight) / synthetic.shape[0]
    return (-scale * dots).detach(), lval


def normalised_weights(hypergrad: Tensor) -> Tensor:
    """w_i = max(-g_i, 0), scaled to mean 1; all zero when no pair lowers the validation loss."""
    helpful = (-hypergrad).clamp_min(0)
    total = helpful.sum()
    if total <= 0:
        return torch.zeros_like(hypergrad)
    return helpful * (hypergrad.numel() / total)
