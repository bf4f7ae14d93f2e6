"""The baseline: the segmentation backbone trained on the real labeled pairs only.

With `augment=standard` this is the strong baseline (flip, affine, brightness/contrast); with
`augment=none` it is the paper's vanilla baseline.
"""

from __future__ import annotations

from genseg_cli.methods.base import Method


class Baseline(Method):
    """Supervised training on real pairs.

    >>> method = Baseline(segmenter=net, loss=SegmentationLoss(), optimizer=partial(AdamW, lr=1e-3),
    ...                   scheduler=None, runtime=resolve_runtime("cpu", "fp32"))
    >>> method.train_step({"image": images, "mask": masks})
    {'loss/seg': 0.93}
    """

    name = "baseline"

    def train_step(self, batch: dict) -> dict[str, float]:
        images, masks = self.to_device(batch)
        return self.segmentation_update(images, masks, unlabeled=self.unlabeled_images(batch))
