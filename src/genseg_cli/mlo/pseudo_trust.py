"""The pseudo-labelled pairs' weight w in the generator's loss, learned at the upper level.

The generator's GAN step weighs each pool pair w against a real pair's 1
(`genseg_cli.generators.pseudo_pairs`; weighted means sum_i w_i l_i / sum_i w_i inside the
autograd). With `generator.pseudo_pairs.learn_weight=true`, w = maximum * sigmoid(beta) and
genseg's upper step moves beta along the validation loss's hypergradient:

    theta' = theta - U(g),  g = grad_theta L_G(theta, w)       (the GAN step, U: its Adam update)
    dL_val/dw = <h, d theta'/dw>,  h = dL_val(W'(theta')) / d theta'
    d theta'/dw = -U'(g) * d g/dw,  d g/dw = grad_theta (dL_G/dw)

h is the hypergradient with respect to the generator's weights that the upper step computes
anyway (`genseg_cli.mlo.hypergrad`). d g/dw is a mixed second derivative taken in the GAN step at
theta, before the optimiser's step (`mixed_derivative`: one extra backward pass through the
generator; dL_G/dw itself is a few scalars). U'(g) is the exact derivative of one Adam step with
respect to its gradient, element by element, from the optimiser's moments before the step
(`step_tangent`): d/dg of m_hat / (sqrt(v_hat) + eps) through both moments, not the SGD view
(-lr) nor the frozen preconditioner lr / (sqrt(v_hat) + eps). What it ignores: w's path through
the critic's update of the same step (the critic also weighs the pairs with w), every earlier
GAN step (theta is a constant), and the segmenter's update between the GAN step and the upper
step (h is taken at the segmenter the upper step sees).

    >>> trust = PseudoTrust(initial=0.5, maximum=2.0)
    >>> trust.value                        # 0.5, the weight for this step's GAN update
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genseg_cli.mlo.synthetic_weight import BoundedWeight


class PseudoTrust(BoundedWeight):
    """A learnable pseudo-pair weight in (0, maximum), starting at `initial`."""

    def __init__(self, initial: float, maximum: float) -> None:
        keys = ("generator.pseudo_pairs.weight", "mlo.pseudo_weight_max")
        super().__init__(initial, maximum, keys, "generator.pseudo_pairs.learn_weight=false")

    def slope(self) -> float:
        """dw / dbeta at the current beta: w * (1 - w / maximum)."""
        w = self.value
        return w * (1.0 - w / self.maximum)


def mixed_derivative(
    loss: Tensor, weights: Tensor, direction: Tensor, params: list[Tensor]
) -> list[Tensor]:
    """d/d eps of grad_params loss(weights + eps * direction) at eps = 0, detached: the autograd
    of <dL/dweights, direction> with respect to `params`. `weights` is the leaf `loss` was built
    from; the graph stays for the caller's own backward pass."""
    (per_pair,) = torch.autograd.grad(loss, weights, create_graph=True, retain_graph=True)
    along = (per_pair * direction).sum()
    if not along.requires_grad:  # no pair weighs on the parameters
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(along, params, retain_graph=True, allow_unused=True)
    return [
        torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads, strict=True)
    ]


def _adam_slope(optimizer: torch.optim.Adam, group: dict, param: Tensor) -> Tensor:
    """d(update)/d(grad) of the coming Adam step for `param`, element by element, from its
    gradient (`param.grad`) and the moments before the step (zero before the first one)."""
    beta1, beta2 = group["betas"]
    lr, eps = float(group["lr"]), float(group["eps"])
    if param.grad is None:  # Adam leaves a parameter without a gradient where it is
        return torch.zeros_like(param)
    grad = param.grad.detach()
    if group.get("weight_decay", 0.0):  # L2 decay enters the moments; d(grad)/dw is unchanged
        grad = grad + group["weight_decay"] * param.detach()
    state = optimizer.state.get(param, {})
    step = float(state["step"]) + 1.0 if "step" in state else 1.0
    m0 = state.get("exp_avg", torch.zeros_like(grad))
    v0 = state.get("exp_avg_sq", torch.zeros_like(grad))
    m = beta1 * m0 + (1.0 - beta1) * grad
    v = beta2 * v0 + (1.0 - beta2) * grad * grad
    bc1, bc2 = 1.0 - beta1**step, math.sqrt(1.0 - beta2**step)
    root = v.sqrt()
    denom = root / bc2 + eps
    # d denom / d grad = (1 - beta2) * grad / (bc2 * sqrt(v)); 0 where v is 0 (grad 0, no history)
    ddenom = torch.where(
        root > 0,
        (1.0 - beta2) * grad / (bc2 * root.clamp_min(torch.finfo(root.dtype).tiny)),
        torch.zeros_like(grad),
    )
    return lr / bc1 * ((1.0 - beta1) / denom - m * ddenom / denom**2)


def step_tangent(optimizer: torch.optim.Optimizer, mixed: list[Tensor]) -> list[Tensor]:
    """d theta'/d eps of the optimiser's coming step, for every parameter of its (single) group,
    given each one's gradient in `.grad` and `mixed` = d grad / d eps (`mixed_derivative`).
    Adam (no amsgrad, not maximising) exactly; plain SGD as -lr * mixed."""
    (group,) = optimizer.param_groups
    params = group["params"]
    if len(params) != len(mixed):
        raise ValueError(f"{len(mixed)} mixed derivatives for {len(params)} parameters")
    if isinstance(optimizer, torch.optim.Adam):
        if group.get("amsgrad") or group.get("maximize"):
            raise ValueError("the pseudo weight's tangent supports plain Adam only")
        slopes = [_adam_slope(optimizer, group, p) for p in params]
        return [-s * d for s, d in zip(slopes, mixed, strict=True)]
    if isinstance(optimizer, torch.optim.SGD) and not group.get("momentum"):
        return [-float(group["lr"]) * d for d in mixed]
    raise ValueError(f"no step tangent for {type(optimizer).__name__}")


def trust_hypergradient(h: list[Tensor], tangent: list[Tensor]) -> Tensor:
    """dL_val/dw = <h, d theta'/dw> over the generator's weights."""
    total = torch.zeros((), dtype=torch.float64)
    for a, b in zip(h, tangent, strict=True):
        total = total + (a.detach().double() * b.double()).sum().cpu()
    return total
