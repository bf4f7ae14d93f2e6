"""Which codec handles which dimensionality: 2D image/mask pairs or 3D image/label volumes."""

from __future__ import annotations

from genseg_cli.core.errors import GensegError
from genseg_cli.data.images import IMAGES
from genseg_cli.data.samples import SampleCodec
from genseg_cli.data.volumes import VOLUMES

CODECS: dict[int, SampleCodec] = {IMAGES.dims: IMAGES, VOLUMES.dims: VOLUMES}


def codec_for(dims: int) -> SampleCodec:
    """The codec of `dims`-dimensional samples (a registry entry's `dims`, or `DataSpec.dims`).

    >>> codec_for(3).folders
    ('imagesTr', 'labelsTr')
    """
    codec = CODECS.get(int(dims))
    if codec is None:
        raise GensegError(f"dataset.dims={dims} is not one of {sorted(CODECS)}")
    return codec
