"""An independent reference for genseg's strong baseline: is a low baseline Dice a pipeline bug?

Trains a plain smp UNet on the train ids of a finished 2D genseg run (its splits.json), with the
same recipe written from scratch here (PIL + cv2 reading, the standard albumentations list, BCE +
Dice, AdamW with cosine decay, batch 4, bf16 autocast where the CPU or GPU supports it), and
prints its test Dice at model resolution beside the run's own. Only genseg's data folder layout
is shared, none of its code, so a bug in genseg's data, loss, loop or scoring shows as a gap.

    python scripts/reference_baseline.py outputs/grid/ph2_s0/ph2_unet_baseline_n40_s0
"""

from __future__ import annotations

import argparse
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


def read_pair(root: Path, image_id: str, channels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The image (uint8 size x size x C) and mask (uint8 {0, 1}) of one id at model size."""
    image_path = next((root / "images").glob(f"{image_id}.*"))
    mask_path = next((root / "masks").glob(f"{image_id}.*"))
    image = np.asarray(Image.open(image_path).convert("RGB" if channels == 3 else "L"))
    mask = (np.asarray(Image.open(mask_path).convert("L")) > 127).astype(np.uint8)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return image.reshape(size, size, channels), mask


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).float() / 127.5 - 1.0


def train_and_score(run_dir: Path, data_dir: Path, seed: int) -> tuple[float, float, float]:
    """Train on the run's train ids; (mean, std, seconds) of the test Dice at model size."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    splits = json.loads((run_dir / "splits.json").read_text())
    dataset, size = config["dataset"], int(config["data"]["image_size"])
    steps, channels = int(config["trainer"]["steps"]), int(dataset["channels"])
    root = data_dir / dataset["name"]
    train = [read_pair(root, i, channels, size) for i in splits["train"]]
    test = [read_pair(root, i, channels, size) for i in splits["test"]]

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    augment = A.Compose(
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
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = smp.Unet("resnet18", encoder_weights=None, in_channels=channels, classes=1).to(device)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps, eta_min=1e-5)
    dice_loss, bce_loss = smp.losses.DiceLoss("binary"), torch.nn.BCEWithLogitsLoss()

    start = time.perf_counter()
    net.train()
    for _ in range(steps):
        batch = [
            augment(image=train[i][0], mask=train[i][1]) for i in rng.integers(len(train), size=4)
        ]
        images = torch.stack([as_tensor(b["image"]) for b in batch]).to(device)
        masks = torch.stack([torch.from_numpy(b["mask"]).float()[None] for b in batch]).to(device)
        with torch.autocast(device, dtype=torch.bfloat16):
            logits = net(images).float()
        loss = bce_loss(logits, masks) + dice_loss(logits, masks)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    seconds = time.perf_counter() - start

    net.eval()
    scores = []
    with torch.no_grad():
        for image, mask in test:
            pred = (net(as_tensor(image)[None].to(device)) > 0)[0, 0].cpu().numpy()
            truth = mask.astype(bool)
            total = pred.sum() + truth.sum()
            scores.append(1.0 if total == 0 else 2 * (pred & truth).sum() / total)
    return float(np.mean(scores)), float(np.std(scores)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished 2D genseg run (splits.json)")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("GENSEG_DATA_DIR"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("give --data-dir or set GENSEG_DATA_DIR")
    mean, std, seconds = train_and_score(args.run_dir, args.data_dir, args.seed)
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
