"""lambda in L(real) + lambda * L(synthetic), learned at the upper level.

The paper fixes lambda = 1. When the generator's images are poor, every synthetic pair pulls the
segmenter away from the real data; when they help, more weight would help more. Here lambda is a
function of one upper-level parameter, lambda = maximum * sigmoid(beta), so the hypergradient of
the validation loss decides how much the segmenter trusts the generator:

    d L_val(W'(lambda)) / d lambda = -xi * <grad_W' L_val(W'), grad_W L_synthetic(W)>

(one unrolled SGD step): lambda grows while synthetic gradients point the way the validation
gradient does and shrinks when they do not. The sigmoid keeps lambda in (0, maximum) without
clipping, so its gradient never vanishes at a bound.

    >>> weight = SyntheticWeight(initial=1.0, maximum=2.0)
    >>> float(weight())            # 1.0; a tensor in the graph of weight.beta
    >>> weight.value               # the same, as a float for the segmenter's own update
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class BoundedWeight(nn.Module):
    """A learnable weight in (0, maximum), starting at `initial`: maximum * sigmoid(beta).
    `keys` names the settings of `initial` and `maximum` for the refusals' messages."""

    def __init__(
        self, initial: float, maximum: float, keys: tuple[str, str], fixed_key: str
    ) -> None:
        super().__init__()
        initial_key, maximum_key = keys
        if maximum <= 0.0:
            raise ValueError(f"{maximum_key}={maximum:g} must be positive")
        if not 0.0 < initial < maximum:
            raise ValueError(
                f"{initial_key}={initial:g} must lie strictly between 0 and "
                f"{maximum_key}={maximum:g} to be learned; raise {maximum_key} or set "
                f"{fixed_key}"
            )
        self.maximum = float(maximum)
        fraction = initial / maximum
        self.beta = nn.Parameter(torch.tensor(math.log(fraction / (1.0 - fraction))))

    def forward(self) -> Tensor:
        return self.maximum * torch.sigmoid(self.beta)

    @property
    def value(self) -> float:
        return float(self.forward().detach())


class SyntheticWeight(BoundedWeight):
    """lambda, the synthetic loss's weight, learned in (0, maximum)."""

    def __init__(self, initial: float = 1.0, maximum: float = 2.0) -> None:
        keys = ("method.synthetic_weight", "mlo.synthetic_weight_max")
        super().__init__(initial, maximum, keys, "mlo.learn_synthetic_weight=false")
