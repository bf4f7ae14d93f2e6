"""How much choosing the best-validation checkpoint moves a run's test score.

A run keeps the checkpoint with the best validation Dice (checked every `trainer.val_every`
steps) and scores it on the test set; with a few validation images (8 for Kvasir-40, 20 for
BUSI-100) that choice is noisy. This scores each finished run's final weights
(checkpoints/last.pt) on the same test set and prints them beside the recorded best-checkpoint
score, one row per run, then the spread of the differences.

    python scripts/final_checkpoint_scores.py outputs/grid/ssl_screen/*/
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from genseg_cli.core.files import load_torch
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.engine.restore import load_run
from genseg_cli.evaluation.evaluate import evaluate_model, summarise


def final_test_dice(run_dir: Path) -> tuple[dict, float]:
    """(the run's metrics.json, the test Dice of its final weights)."""
    run = load_run(run_dir, "cpu")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = load_torch(run_dir / "checkpoints" / "last.pt")
    run.segmenter.load_state_dict(last["method"]["segmenter"])
    cfg = run.cfg
    data_dir = os.environ.get("GENSEG_DATA_DIR", cfg.paths.data_dir)
    data = load_run_data(
        dataset_spec(cfg.dataset.name),
        data_dir,
        int(cfg.n_labeled),
        int(cfg.seed),
        float(cfg.val_fraction),
        with_ood=False,
    )
    ev = cfg.evaluation
    with torch.no_grad():
        scores = evaluate_model(
            run.segmenter.eval(),
            data.test,
            run.spec,
            run.runtime,
            ev.resolution,
            ev.threshold,
            ev.batch_size,
        )
    return metrics, float(summarise(scores)["dice_mean"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    args = parser.parse_args()
    table = Table(
        "run",
        "method",
        "seed",
        "best step",
        "best-val test Dice",
        "final test Dice",
        "final - best",
    )
    differences, skipped = [], []
    for run_dir in args.runs:
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            skipped.append(run_dir.name)  # e.g. trainer.checkpoint_every=0 keeps no last.pt
            continue
        metrics, final = final_test_dice(run_dir.resolve())
        best = metrics["test"]["dice_mean"]
        differences.append(final - best)
        table.add_row(
            run_dir.name,
            metrics["run"]["method"],
            str(metrics["run"]["seed"]),
            str(metrics["best_step"]),
            f"{best:.4f}",
            f"{final:.4f}",
            f"{final - best:+.4f}",
        )
    console = Console(width=200)
    console.print(table)
    if skipped:
        console.print(f"skipped (no checkpoints/last.pt): {', '.join(skipped)}")
    if differences:
        spread = torch.tensor(differences)
        console.print(
            f"final - best over {len(differences)} runs: mean {spread.mean():+.4f}, "
            f"mean |.| {spread.abs().mean():.4f}, max |.| {spread.abs().max():.4f}"
        )


if __name__ == "__main__":
    main()
