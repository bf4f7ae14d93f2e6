"""An independent reference for genseg's strong baseline: is a low baseline Dice a pipeline bug?

Trains a plain smp UNet on the train ids of a finished 2D genseg run (its splits.json), with the
same recipe written from scratch here (PIL + cv2 reading, the standard albumentations list, BCE +
Dice, AdamW with cosine decay, batch 4, bf16 autocast where the CPU has AMX / AVX512-BF16 or on
CUDA, else fp32), and prints its test Dice at model resolution beside the run's own. Only genseg's
data folder layout is shared, none of its code, so a bug in genseg's data, loss, loop or scoring
shows as a gap.

    python scripts/reference_baseline.py outputs/grid/ph2_s0/ph2_unet_baseline_n40_s0

The recipe is importable for timing (scripts/benchmark_methods.py --reference loads this file by
path): `PlainTraining` holds the model and optimiser and does one step per `train_step(batch)`;
`plain_training(...)` returns seconds per step. By default it uses channels_last tensors and fused
AdamW, as genseg's pipeline does (trainer.channels_last, conf/optim/adamw.yaml fused: true), so a
time difference is the pipeline's overhead and not a different kernel choice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import segmentation_models_pytorch as smp
import torch
import yaml
from PIL import Image

BATCH_SIZE = 4
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def read_pair(root: Path, image_id: str, channels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The image (uint8 size x size x C) and mask (uint8 {0, 1}) of one id at model size."""
    image_path = next((root / "images").glob(f"{image_id}.*"))
    mask_path = next((root / "masks").glob(f"{image_id}.*"))
    image = np.asarray(Image.open(image_path).convert("RGB" if channels == 3 else "L"))
    mask = (np.asarray(Image.open(mask_path).convert("L")) > 127).astype(np.uint8)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return image.reshape(size, size, channels), mask


def read_pairs(
    root: Path, ids: list[str], channels: int, size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    return [read_pair(root, i, channels, size) for i in ids]


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).float() / 127.5 - 1.0


def augmentation(seed: int) -> A.Compose:
    """The standard list (flip, affine, brightness/contrast), seeded."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                scale=(0.8, 1.2),
                translate_percent=(-0.1, 0.1),
                rotate=(-15, 15),
                shear=(-8, 8),
                border_mode=0,
                p=0.8,
            ),
            A.RandomBrightnessContrast(p=0.5),
        ],
        seed=seed,
    )


def cpu_has_fast_bf16() -> bool:
    # without AMX / AVX512-BF16 units, bf16 autocast on CPU is emulated and slower than fp32
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(device: str | torch.device, precision: str = "auto") -> str:
    """ "auto": bf16 on CUDA or on a CPU with fast bf16, else fp32; other values pass through."""
    if precision == "auto":
        fast = torch.device(device).type == "cuda" or cpu_has_fast_bf16()
        return "bf16" if fast else "fp32"
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(
            f"precision {precision!r} is not one of auto, {', '.join(AUTOCAST_DTYPES)}"
        )
    return precision


class PlainTraining:
    """The plain recipe, one step at a time: smp UNet (ResNet-18), BCE + Dice, AdamW (lr 1e-3,
    wd 1e-4) with cosine decay to 1e-5 over `steps`, autocast at `precision`.

    `batch()` draws and augments one batch on the CPU; `train_step(batch)` does one update and
    returns the loss. Splitting the two lets a benchmark time the update alone, the way
    scripts/benchmark_methods.py times genseg's methods on batches built beforehand.
    `channels_last` / `fused`: genseg's memory format and AdamW kernel (see the module doc).
    """

    def __init__(
        self,
        train_pairs: list[tuple[np.ndarray, np.ndarray]],
        steps: int,
        seed: int,
        channels: int,
        device: str | torch.device,
        channels_last: bool = True,
        fused: bool = True,
        precision: str = "auto",
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.train_pairs, self.batch_size = train_pairs, batch_size
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.precision = resolve_precision(self.device, precision)
        # seeded in the order this script always used: a seed draws the same weights and batches
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.augment = augmentation(seed)
        net = smp.Unet("resnet18", encoder_weights=None, in_channels=channels, classes=1)
        net = net.to(self.device)
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.optimiser = torch.optim.AdamW(
            self.net.parameters(), lr=1e-3, weight_decay=1e-4, fused=fused
        )
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimiser, steps, eta_min=1e-5
        )
        self.dice_loss, self.bce_loss = smp.losses.DiceLoss("binary"), torch.nn.BCEWithLogitsLoss()
        # fp16 gradients underflow without loss scaling; a disabled scaler is a no-op otherwise
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = AUTOCAST_DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N x C x H x W in [-1, 1]) and masks (N x 1 x H x W) of one augmented batch."""
        picks = self.rng.integers(len(self.train_pairs), size=self.batch_size)
        batch = [
            self.augment(image=self.train_pairs[i][0], mask=self.train_pairs[i][1]) for i in picks
        ]
        images = torch.stack([as_tensor(b["image"]) for b in batch])
        masks = torch.stack([torch.from_numpy(b["mask"]).float()[None] for b in batch])
        return images, masks

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        images, masks = (t.to(self.device, non_blocking=True) for t in batch)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        self.net.train()
        with self.autocast():
            logits = self.net(images).float()
        loss = self.bce_loss(logits, masks) + self.dice_loss(logits, masks)
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        self.schedule.step()
        # reading the loss waits for the GPU, so a timer around steps measures finished work
        return float(loss.detach())

    def train(self, steps: int) -> float:
        """`steps` steps, each drawing its batch; returns the seconds they took."""
        start = time.perf_counter()
        for _ in range(steps):
            self.train_step(self.batch())
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> np.ndarray:
        """Boolean mask of one uint8 image at model size."""
        self.net.eval()
        images = as_tensor(image)[None].to(self.device)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return (self.net(images) > 0)[0, 0].cpu().numpy()


def plain_training(
    train_pairs: list[tuple[np.ndarray, np.ndarray]],
    steps: int,
    seed: int,
    channels: int,
    device: str | torch.device,
    channels_last: bool = True,
    fused: bool = True,
    *,
    warmup: int = 0,
    precision: str = "auto",
    batch_size: int = BATCH_SIZE,
) -> float:
    """Seconds per step (augmentation included, as in a real run) over `steps` steps after
    `warmup` untimed ones: the first steps pay for allocator growth and kernel selection."""
    trainer = PlainTraining(
        train_pairs,
        warmup + steps,
        seed,
        channels,
        device,
        channels_last,
        fused,
        precision,
        batch_size,
    )
    trainer.train(warmup)
    return trainer.train(steps) / steps


def train_and_score(
    run_dir: Path, data_dir: Path, seed: int, channels_last: bool = True, fused: bool = True
) -> tuple[float, float, float]:
    """Train on the run's train ids; (mean, std, seconds) of the test Dice at model size."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    splits = json.loads((run_dir / "splits.json").read_text())
    dataset, size = config["dataset"], int(config["data"]["image_size"])
    steps, channels = int(config["trainer"]["steps"]), int(dataset["channels"])
    root = data_dir / dataset["name"]
    train = read_pairs(root, splits["train"], channels, size)
    test = read_pairs(root, splits["test"], channels, size)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    trainer = PlainTraining(train, steps, seed, channels, device, channels_last, fused)
    seconds = trainer.train(steps)

    scores = []
    for image, mask in test:
        pred, truth = trainer.predict(image), mask.astype(bool)
        total = pred.sum() + truth.sum()
        scores.append(1.0 if total == 0 else 2 * (pred & truth).sum() / total)
    return float(np.mean(scores)), float(np.std(scores)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished 2D genseg run (splits.json)")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("GENSEG_DATA_DIR"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-channels-last", action="store_true", help="contiguous (NCHW) tensors, not NHWC"
    )
    parser.add_argument("--no-fused", action="store_true", help="AdamW's per-tensor loop")
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("give --data-dir or set GENSEG_DATA_DIR")
    mean, std, seconds = train_and_score(
        args.run_dir, args.data_dir, args.seed, not args.no_channels_last, not args.no_fused
    )
    metrics = json.loads((args.run_dir / "metrics.json").read_text())
    resolution = metrics["run"].get("resolution")
    print(f"| run | genseg test Dice ({resolution} res.) | reference (model res.) | time |")
    print("|---|---|---|---|")
    print(
        f"| {args.run_dir.name} | {metrics['test']['dice_mean']:.4f} | {mean:.4f} ± {std:.4f} "
        f"| {seconds:.0f} s |"
    )


if __name__ == "__main__":
    main()
