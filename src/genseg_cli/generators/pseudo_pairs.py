"""Pseudo-labelled pairs for the generator: the pool's unlabeled images with the masks a teacher
predicts for them, beside the real pairs in the generator's updates.

A mask-to-image generator learns from the few labelled pairs alone; the pool holds 4 to 20 times
more images. With `generator.pseudo_pairs.weight` > 0 each generator update also learns from the
unlabeled batch of that step: a teacher segments the images, an image whose confidence reaches
`threshold` joins as a pair (image, predicted mask), and the recipe weighs it `weight` against a
real pair's 1. The confidence (`rule`) is the teacher's mean max-probability over what it found,
the predicted foreground and a one-pixel ring around it (`foreground`; an image where it found
nothing scores 0), or over every pixel (`mean`, where the background's sure pixels swamp the
lesion's: docs/generators.md measures both). The teacher is the run's semi-supervised
objective's: a finished run's segmenter (`ssl=self_training ssl.teacher_run=RUN_DIR`: trained,
so its pairs join the pre-training too) or an EMA teacher (`ssl=fixmatch`, `ssl=mean_teacher`:
it learns with the segmenter, so its pairs join only the updates of a generator that trains end
to end: genseg's GAN step). The images are the split's unlabeled ones (splits.json), never a
test image.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import Runtime
from genseg_cli.semisup.base import hard_labels, probabilities
from genseg_cli.semisup.ema import EmaTeacher

__all__ = ["RULES", "PseudoPairs", "Joined", "build_pseudo_pairs", "confident", "find_teacher"]

Joined = tuple[Tensor, Tensor, Tensor | None, dict[str, float]]  # masks, images, weights, logs


def find_teacher(objective: object) -> tuple[nn.Module, bool] | None:
    """(the teacher network, whether it is trained already) of an unlabeled objective: a finished
    run's frozen segmenter, else its EMA teacher; None when it has neither."""
    trained = getattr(objective, "trained_teacher", None)
    if isinstance(trained, nn.Module):
        return trained, True
    ema = getattr(objective, "teacher", None)
    if isinstance(ema, EmaTeacher):
        return ema, False
    return None


RULES = ("foreground", "mean")  # generator.pseudo_pairs.rule


def foreground_ring(masks: Tensor) -> Tensor:
    """The predicted foreground (any class but background) grown by one pixel (voxel): N x spatial,
    bool, of hard masks (N, C, *spatial)."""
    fg = (masks[:, 0] > 0) if masks.shape[1] == 1 else masks[:, 1:].sum(1) > 0
    pool = F.max_pool3d if fg.dim() == 4 else F.max_pool2d
    return pool(fg.float().unsqueeze(1), 3, stride=1, padding=1)[:, 0] > 0


def confident(
    probs: Tensor, threshold: float, rule: str = "foreground"
) -> tuple[Tensor, Tensor, Tensor]:
    """(hard masks, per-image confidence by `rule`, which images reach `threshold`) of class
    probabilities (N, C, *spatial): one sigmoid channel or a softmax over classes."""
    masks, confidence = hard_labels(probs)
    c = confidence[:, 0]
    if rule == "mean":
        score = c.flatten(1).mean(1)
    elif rule == "foreground":
        ring = foreground_ring(masks).to(c.dtype)
        found = ring.flatten(1).sum(1)
        score = (c * ring).flatten(1).sum(1) / found.clamp(min=1)  # 0 where nothing was found
    else:
        raise ValueError(f"unknown pseudo-pair rule {rule!r}; one of {list(RULES)}")
    return masks, score, score >= threshold


class PseudoPairs:
    """The teacher's pairs for one batch of pool images, and their weight."""

    def __init__(
        self,
        teacher: nn.Module,
        trained: bool,
        threshold: float,
        weight: float,
        runtime: Runtime,
        rule: str = "foreground",
    ) -> None:
        self.teacher, self.trained = teacher, trained
        self.threshold, self.weight, self.rule = float(threshold), float(weight), rule
        self.runtime = runtime
        self.seen = self.kept = 0  # pool images labelled, and those that joined a pair
        # True while the upper level learns `weight` (genseg sets it before each GAN step): the
        # pairs then always carry their weights, also where the weight passes through 1
        self.learned = False

    @torch.no_grad()
    def label(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(confident images, their hard masks, every image's confidence)."""
        was_training = self.teacher.training
        self.teacher.eval()  # a teacher's batch-norm statistics stay as they were
        with self.runtime.autocast():
            logits = self.teacher(images)
        self.teacher.train(was_training)
        masks, score, keep = confident(probabilities(logits.float()), self.threshold, self.rule)
        self.seen += int(images.shape[0])
        self.kept += int(keep.sum())
        return images[keep], masks[keep].to(images.dtype), score

    def join(self, masks: Tensor, images: Tensor, pool: Tensor, weighs: bool) -> Joined:
        """The real pairs with the confident pool pairs appended, the per-pair weights (None when
        every pair weighs 1 or none joined: the recipe's unweighted update) and what history.csv
        logs. `weighs`: whether the recipe takes per-pair weights."""
        extra_images, extra_masks, score = self.label(pool)
        logs = {
            "pseudo/kept": float(extra_images.shape[0]) / max(1, pool.shape[0]),
            "pseudo/confidence": float(score.mean()),
        }
        n = int(extra_images.shape[0])
        if n == 0:
            return masks, images, None, logs
        weights = None
        if weighs and (self.weight != 1.0 or self.learned):
            weights = torch.cat(
                [
                    torch.ones(masks.shape[0], device=masks.device),
                    torch.full((n,), self.weight, device=masks.device),
                ]
            )
        joined_images = torch.cat([images, extra_images.to(images.dtype)])
        return torch.cat([masks, extra_masks]), joined_images, weights, logs

    def digest(self) -> str:
        """What identifies the teacher's weights (a pre-training cache key's part)."""
        h = hashlib.sha256()
        for name, value in self.teacher.state_dict().items():
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def state_dict(self) -> dict:
        """The counts metrics.json reports, so that a resumed run reports the whole run's."""
        return {"seen": self.seen, "kept": self.kept}

    def load_state_dict(self, state: dict) -> None:
        self.seen, self.kept = int(state["seen"]), int(state["kept"])

    def describe(self) -> dict:
        """What metrics.json says: the rule (the last weight used), and how many pool images
        were labelled and kept."""
        return {
            "weight": self.weight,
            "threshold": self.threshold,
            "rule": self.rule,
            "teacher": "trained run" if self.trained else "ema",
            "seen": self.seen,
            "kept": self.kept,
        }


def build_pseudo_pairs(
    config: DictConfig | None,
    objective: object,
    runtime: Runtime,
    *,
    weighs: bool,
    trains_end_to_end: bool,
    recipe_name: str,
) -> PseudoPairs | None:
    """`generator.pseudo_pairs` as configured (None when its weight is 0 or it is absent);
    refuses settings under which the pairs would reach no generator update."""
    node = config or {}
    weight = float(node.get("weight", 0.0) or 0.0)
    if weight <= 0:
        return None
    key = f"generator.pseudo_pairs.weight={weight:g}"
    found = find_teacher(objective) if objective is not None else None
    if found is None:
        raise GensegError(
            f"{key} needs a teacher for the pool's images: ssl=self_training "
            "ssl.teacher_run=RUN_DIR (a finished run), or an ssl objective with an EMA teacher "
            "(ssl=fixmatch, ssl=mean_teacher); or set generator.pseudo_pairs.weight=0"
        )
    teacher, trained = found
    if not trained and not trains_end_to_end:
        raise GensegError(
            f"{key}: an EMA teacher learns with the segmenter, after this method's generator has "
            "stopped learning; use method=genseg, or a trained teacher "
            "(ssl=self_training ssl.teacher_run=RUN_DIR)"
        )
    if weight != 1.0 and not weighs:
        raise GensegError(
            f"{key}: generator={recipe_name} cannot weigh its pairs; set "
            "generator.pseudo_pairs.weight=1 or use generator=searchable"
        )
    threshold = float(node.get("threshold", 0.9))
    rule = node.get("rule", "mean")  # a config saved before the key trained with `mean`
    return PseudoPairs(teacher, trained, threshold, weight, runtime, rule)
