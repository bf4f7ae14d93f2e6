"""Layer classes by number of spatial dimensions, shared by the generator and the discriminator.

Both networks are written once and built for images (N,C,H,W) with ``dims=2`` or for volumes
(N,C,D,H,W) with ``dims=3``: they look their convolution and normalisation classes up here.

>>> CONV[3].__name__, BATCH_NORM[2].__name__
('Conv3d', 'BatchNorm2d')
>>> type(norm_layer("instance", 8, dims=3)).__name__, norm_layer("none", 8)
('InstanceNorm3d', Identity())
"""

from __future__ import annotations

from torch import nn

__all__ = ["BATCH_NORM", "CONV", "DIMS", "INSTANCE_NORM", "NORMS", "check_dims", "norm_layer"]

DIMS = (2, 3)
# Every normalisation a network here may use; each network states which of them it accepts.
NORMS = ("batch", "instance", "none")

CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
BATCH_NORM: dict[int, type[nn.Module]] = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
INSTANCE_NORM: dict[int, type[nn.Module]] = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def check_dims(dims: int) -> int:
    """``dims`` itself when it is 2 (images) or 3 (volumes), else a ValueError."""
    if dims not in DIMS:
        raise ValueError(f"dims must be 2 (images) or 3 (volumes), got {dims!r}")
    return dims


def norm_layer(norm: str, channels: int, dims: int = 2) -> nn.Module:
    """A ``norm`` ("batch", "instance" or "none") layer over ``channels`` channels.

    Instance norm is pix2pix's: no affine scale/shift and no running statistics, so it holds
    no state_dict entries. "none" is an ``nn.Identity`` (no parameters either).
    """
    if norm == "batch":
        return BATCH_NORM[dims](channels)
    if norm == "instance":
        return INSTANCE_NORM[dims](channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
