"""What a run's network sees of its data, resolved once from the run's config.

`DataSpec.from_config(cfg)` is the one place that reads dimensionality, model size, channels and
classes out of a composed config; everything downstream takes the spec (and asks `spec.codec`
for whatever differs between 2D images and 3D volumes) instead of the whole config.

>>> spec = DataSpec.from_config(compose("train", ["dataset=hippocampus"]))
>>> spec.dims, spec.model_size, spec.spatial, spec.mask_channels
(3, (32, 48, 32), (32, 48, 32), 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from genseg_cli.data.codecs import codec_for
from genseg_cli.data.registry import class_names, mask_channels

if TYPE_CHECKING:
    from genseg_cli.data.samples import SampleCodec

# the network's input size: the side of a square image (2D) or a volume's (D, H, W) shape (3D)
ModelSize = int | tuple[int, ...]


@dataclass(frozen=True)
class DataSpec:
    """One run's data as its networks see it.

    name: the dataset's registry name; dims: 2 (images) or 3 (volumes); model_size: the
    network's input size (an int side in 2D, a (D, H, W) tuple in 3D); image_channels: input
    channels; mask_channels: 1 for binary masks, background + classes for label maps;
    class_names: the foreground classes; batch_size and num_workers: how training batches are
    drawn (`data.batch_size`, `data.num_workers`).
    """

    name: str
    dims: int
    model_size: ModelSize
    image_channels: int
    mask_channels: int
    class_names: tuple[str, ...]
    batch_size: int
    num_workers: int

    def __post_init__(self) -> None:
        self.codec.validate(self)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> DataSpec:
        """The spec of a composed run config (`genseg train`'s, or a run's saved config.yaml):
        `data.image_size` is the model size of 2D datasets, `dataset.volume_shape` of 3D ones."""
        dataset = cfg.dataset
        dims = int(dataset.dims)
        size: ModelSize = (
            tuple(int(s) for s in dataset.volume_shape) if dims == 3 else int(cfg.data.image_size)
        )
        return cls(
            name=str(dataset.name),
            dims=dims,
            model_size=size,
            image_channels=int(dataset.channels),
            mask_channels=mask_channels(dataset),
            class_names=tuple(class_names(dataset)),
            batch_size=int(cfg.data.batch_size),
            num_workers=int(cfg.data.num_workers),
        )

    @property
    def spatial(self) -> tuple[int, ...]:
        """The model size as one spatial shape in either dimensionality: (S, S) or (D, H, W)."""
        if isinstance(self.model_size, int):
            return (self.model_size,) * self.dims
        return tuple(self.model_size)

    @property
    def codec(self) -> SampleCodec:
        """How this dimensionality's samples are read, resized, augmented, checked and written."""
        return codec_for(self.dims)

    @property
    def supports_channels_last(self) -> bool:
        """Whether trainer.channels_last applies: it is a 4D (NCHW) memory layout, so 3D
        networks keep the default one."""
        return self.dims == 2

    def accepts(self, entry: DictConfig) -> bool:
        """Whether a registry entry's data can feed this spec's network (same dimensionality)."""
        return int(entry.dims) == self.dims
