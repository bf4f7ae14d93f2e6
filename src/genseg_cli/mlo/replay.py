"""The generator pass the upper step differentiates through, made the pass the segmenter learned
from.

genseg's training step makes the real pairs' fakes (for the GAN step) and the synthetic images
(for the segmenter) in one generator pass in train mode: batch norm normalises with the statistics
of that whole batch, and dropout draws its masks from the random state of that moment. The upper
step needs the synthetic images again, in fp32 and in the graph of the upper-level parameters.
`GeneratorPass` records what the pass depended on besides the weights (the real masks that shared
its batch, the random state), and `replay` runs the generator again on the same batch from the
same random state, so the hypergradient sees the images the segmenter learned from (bit for bit
in fp32 when the generator's weights did not move in between). The replay leaves the generator's
buffers (batch-norm running statistics) as they were: it is no second training pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class GeneratorPass:
    """What one training pass of the generator depended on besides its weights."""

    real_masks: Tensor  # the masks before the synthetic ones in the pass's batch
    cpu_state: Tensor
    cuda_state: Tensor | None
    device: torch.device

    @classmethod
    def record(cls, real_masks: Tensor, device: torch.device) -> GeneratorPass:
        """Call right before the pass: the random state its dropout will draw from."""
        device = torch.device(device)
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return cls(real_masks.detach(), torch.get_rng_state(), cuda, device)

    @contextlib.contextmanager
    def random_state(self) -> Iterator[None]:
        """The recorded random state inside, the caller's stream untouched outside."""
        gpus = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus):
            torch.set_rng_state(self.cpu_state)
            if self.cuda_state is not None:
                torch.cuda.set_rng_state(self.cuda_state, self.device)
            yield


@contextlib.contextmanager
def buffers_kept(module: nn.Module) -> Iterator[None]:
    """Inside, `module` updates copies of its buffers (batch-norm running statistics, batch
    counts); on exit its own tensors are back, untouched. Swapped, not copied back: the backward
    pass of batch norm holds the tensors the forward pass was given."""
    saved = []
    for owner in module.modules():
        for name, buffer in owner._buffers.items():
            if buffer is not None:
                saved.append((owner, name, buffer))
                owner._buffers[name] = buffer.clone()
    try:
        yield
    finally:
        for owner, name, buffer in saved:
            owner._buffers[name] = buffer


def replay(
    generator: nn.Module,
    synthesise: Callable[[Tensor], Tensor],
    masks: Tensor,
    recorded: GeneratorPass | None,
) -> Tensor:
    """`synthesise(masks)` (the generator's images, in the graph) as the recorded training pass
    made them: on [real masks, masks] in train mode from the recorded random state, the last
    len(masks) images returned. Without a record, on `masks` alone in the generator's current
    mode. Either way the generator's buffers are left as they were."""
    with buffers_kept(generator):
        if recorded is None:
            return synthesise(masks)
        was_training = generator.training
        generator.train()
        try:
            with recorded.random_state():
                images = synthesise(torch.cat([recorded.real_masks, masks.to(recorded.real_masks)]))
        finally:
            generator.train(was_training)
        return images[recorded.real_masks.shape[0] :]
