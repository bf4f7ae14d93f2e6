"""SwinUNETR (Hatamizadeh et al. 2022) for any input size: MONAI's network, 2D or 3D.

MONAI's SwinUNETR halves the resolution five times and so refuses inputs whose sides are not
multiples of 32 (patch_size**5); the hippocampus volumes (32 x 48 x 32) are not. This subclass
pads each spatial side up to the next multiple (repeating the edge voxels, so that no artificial
intensity step appears at the border) and crops the logits back to the input's shape. Where every
side is 32 or less, the bottleneck at 1/32 would be a single voxel, which the instance norm of
MONAI's blocks cannot normalise in training (and zeroes in evaluation); such inputs are padded to
64 per side instead. The parameters, and so the state dict's keys, are MONAI's own: a MONAI
SwinUNETR state dict loads as it is.
"""

from __future__ import annotations

from importlib.util import find_spec

from monai.networks.nets import SwinUNETR
from torch import Tensor
from torch.nn import functional as F

from genseg_cli.core.errors import GensegError


class PaddedSwinUNETR(SwinUNETR):
    """`monai.networks.nets.SwinUNETR` (same arguments) that accepts any spatial size.

    >>> net = PaddedSwinUNETR(in_channels=1, out_channels=3, spatial_dims=3, feature_size=12)
    >>> net(torch.zeros(1, 1, 32, 48, 32)).shape
    torch.Size([1, 3, 32, 48, 32])
    """

    def __init__(self, **kwargs) -> None:
        # MONAI imports einops lazily and would fail only at the first forward pass
        if find_spec("einops") is None:
            raise GensegError("backbone=swin_unetr needs einops: pip install einops")
        super().__init__(**kwargs)

    def forward(self, x_in: Tensor) -> Tensor:
        spatial = tuple(x_in.shape[2:])
        multiple = self.patch_size**5
        padded = [side + -side % multiple for side in spatial]
        if all(side == multiple for side in padded):  # a one-voxel bottleneck
            padded = [2 * multiple] * len(spatial)
        # F.pad takes (before, after) pairs from the last dimension backwards
        padding = [
            amount
            for side, to in zip(spatial[::-1], padded[::-1], strict=True)
            for amount in (0, to - side)
        ]
        if any(padding):
            x_in = F.pad(x_in, padding, mode="replicate")
        logits = super().forward(x_in)
        return logits[(..., *(slice(0, side) for side in spatial))]
