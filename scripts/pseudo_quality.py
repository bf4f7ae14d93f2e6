"""How well a teacher's confidence tells good pseudo masks from bad ones, on a run's unlabeled pool.

`generator.pseudo_pairs` lets an unlabeled image join the generator's updates with the mask a
teacher predicts when the image's confidence reaches a threshold. Every dataset here is fully
annotated, so the pool's true masks exist (a run never reads them): this script scores the
teacher's pseudo masks against them and prints, per confidence rule, its rank correlation with
the pseudo masks' Dice and, per threshold, the share of the pool kept and the kept masks' mean
Dice. A rule worth using keeps fewer, better masks as its threshold rises.

    python scripts/pseudo_quality.py RUN_DIR                # a finished run (its best segmenter)
    python scripts/pseudo_quality.py RUN_DIR --csv out.csv  # also one row per pool image

The rules are `generator.pseudo_pairs.rule`'s (genseg_cli.generators.pseudo_pairs.confident):
`foreground` (the teacher's mean max-probability over the predicted foreground and a one-pixel
ring around it) and `mean` (over every pixel).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from genseg_cli.core.errors import GensegError
from genseg_cli.data.codecs import codec_for
from genseg_cli.data.registry import dataset_root
from genseg_cli.engine.restore import load_run
from genseg_cli.generators.pseudo_pairs import RULES, confident
from genseg_cli.semisup.base import probabilities

THRESHOLDS = {
    "foreground": [0.6, 0.7, 0.8, 0.85, 0.9, 0.95],
    "mean": [0.8, 0.9, 0.95, 0.97, 0.98, 0.99],
}


def rule_scores(probs: torch.Tensor) -> tuple[np.ndarray, dict[str, float]]:
    """(the predicted foreground, each rule's score) of one image's probabilities (1, C, H, W)."""
    scores = {}
    for rule in RULES:
        masks, score, _ = confident(probs, 0.0, rule)
        scores[rule] = float(score[0])
    fg = (masks[0, 0] > 0) if masks.shape[1] == 1 else masks[0, 1:].sum(0) > 0
    return fg.numpy(), scores


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "run_dir", type=Path, help="a finished 2D run (its segmenter is the teacher)"
    )
    parser.add_argument("--data-dir", default=None, help="datasets folder (default: the run's)")
    parser.add_argument("--csv", type=Path, default=None, help="one row per pool image")
    args = parser.parse_args()
    try:
        run = load_run(args.run_dir, device="cpu")
    except GensegError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cfg = run.cfg
    if int(cfg.dataset.dims) != 2:
        print(f"error: {args.run_dir} is a 3D run; this check reads 2D pools", file=sys.stderr)
        return 2
    ids = run.splits.get("unlabeled", [])
    if not ids:
        print(f"error: {args.run_dir}/splits.json lists no unlabeled images", file=sys.stderr)
        return 2
    root = dataset_root(cfg.dataset, args.data_dir or cfg.paths.data_dir)
    samples = codec_for(2).load(root, ids, int(cfg.dataset.channels))
    rows = []
    with torch.no_grad():
        for sample, logit in zip(samples, run.logits(samples, 8), strict=True):
            fg, scores = rule_scores(probabilities(logit[None]))
            truth = run.spec.codec.model_target(sample, tuple(fg.shape))
            rows.append({"id": sample.id, "dice": dice(fg, truth), **scores})
    table_rows(rows, cfg)
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


def table_rows(rows: list[dict], cfg) -> None:
    dices = np.array([r["dice"] for r in rows])
    title = (
        f"{cfg.dataset.name}, {len(rows)} pool images, teacher {cfg.method.name} "
        f"(seed {cfg.seed}); pseudo-mask Dice over the pool {dices.mean():.3f}"
    )
    table = Table(title=title)
    for column in ("rule", "rank corr. with Dice", "threshold", "kept", "kept mean Dice"):
        table.add_column(column)
    for rule, thresholds in THRESHOLDS.items():
        values = np.array([r[rule] for r in rows])
        corr = f"{spearman(values, dices):+.2f}"
        for t in thresholds:
            kept = values >= t
            mean = f"{dices[kept].mean():.3f}" if kept.any() else "-"
            table.add_row(rule, corr, f"{t:g}", f"{kept.mean():.0%}", mean)
            corr = ""
    Console(width=110).print(table)


if __name__ == "__main__":
    raise SystemExit(main())
