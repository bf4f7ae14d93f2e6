"""A finished run's final weights (its last step's), scored beside the weights it kept.

A run keeps `checkpoints/best.pt`: with `trainer.keep=best_val` (the default) the weights of the
best validation Dice, which a few validation images choose noisily. `genseg evaluate
run_dir=RUN weights=final` scores the last step's segmenter instead, read from the resumable
`checkpoints/last.pt`, and prints it beside the kept weights' recorded scores. A run that ends
done drops last.pt unless it was trained with `trainer.keep_last=true`; a run trained with
`evaluation.final_weights=true` holds the final weights' scores in its metrics.json instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import load_torch
from genseg_cli.engine.checkpoint import LAST
from genseg_cli.engine.restore import TrainedRun

WEIGHTS = ("kept", "final")  # the values of `genseg evaluate weights=...`


def use_final_weights(run: TrainedRun) -> int:
    """Load the run's last-step segmenter into `run.segmenter`; returns that step.

    With trainer.keep=final the kept checkpoint already holds them. Refuses (one line, nothing
    scored) a run whose last.pt is gone or holds an earlier step: scoring it as final would be
    a silent wrong result.
    """
    if run.own is not None:  # a framework keeps its own final weights (nnU-Net's)
        return run.own.use_final_weights()
    steps = int(run.cfg.trainer.steps)
    if run.cfg.trainer.get("keep", "best_val") == "final":
        return steps
    path = run.run_dir / LAST
    if not path.is_file():
        if _has_final_scores(run.run_dir):
            how = (
                "its metrics.json 'final' holds the final weights' test and OOD scores; to "
                "score them on other data, train with trainer.keep_last=true"
            )
        else:
            how = (
                "to score the final weights, train with trainer.keep_last=true (keeps last.pt) "
                "or evaluation.final_weights=true (scores them into metrics.json 'final')"
            )
        raise GensegError(
            f"run {run.run_dir} has no {LAST} (a finished run drops it unless trained with "
            f"trainer.keep_last=true): {how}; weights=kept scores best.pt"
        )
    state = load_torch(path)
    if int(state["step"]) != steps:
        raise GensegError(
            f"{path} holds step {state['step']}, not the run's last step {steps} "
            f"(trainer.checkpoint_every={run.cfg.trainer.checkpoint_every} does not divide "
            f"trainer.steps={steps}): the final weights were not saved; weights=kept scores best.pt"
        )
    run.segmenter.load_state_dict(state["method"]["segmenter"])
    run.segmenter.eval()
    return steps


def _has_final_scores(run_dir: Path) -> bool:
    """Whether metrics.json holds the final weights' scores (evaluation.final_weights=true)."""
    try:
        return "final" in json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def recorded(run_dir: Path, resolution: str) -> tuple[dict[str, dict], int | None]:
    """The kept weights' summaries per set ("test", OOD names) from the run's metrics.json and
    the kept step; no summaries when they were scored at another resolution (not comparable)."""
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    step = metrics.get("best_step")
    if metrics.get("run", {}).get("resolution") != resolution:
        return {}, step
    return {"test": metrics.get("test") or {}, **(metrics.get("ood") or {})}, step


def _dice(summary: dict | None) -> float:
    value = (summary or {}).get("dice_mean")
    return float("nan") if value is None else float(value)


def beside_kept(metrics: dict, kept: dict[str, dict], kept_step: int | None) -> Table:
    """Per scored set: the kept weights' recorded Dice, the final weights' and the difference
    (final minus kept); "-" where the run recorded no comparable score."""
    where = f"step {kept_step}" if kept_step is not None else "best.pt"
    table = Table(title=f"final weights (step {metrics['weights_step']}) beside kept ({where})")
    for column in ("set", "kept Dice", "final Dice", "final - kept"):
        table.add_column(column, justify="left" if column == "set" else "right")
    final = {"test": metrics.get("test"), **metrics["ood"]}
    for name, summary in final.items():
        if summary is None:
            continue
        ours, theirs = _dice(summary), _dice(kept.get(name))
        known = not math.isnan(theirs)
        table.add_row(
            Text(name),  # a user folder's name is text, not rich markup
            f"{theirs:.4f}" if known else "-",
            f"{ours:.4f}",
            f"{ours - theirs:+.4f}" if known else "-",
        )
    return table


def print_beside_kept(metrics: dict, console: Console | None = None) -> None:
    """`beside_kept` for the run that `metrics` (an evaluation's) scored."""
    run = metrics["run"]
    kept, step = recorded(Path(run["run_dir"]), run["resolution"])
    (console or Console()).print(beside_kept(metrics, kept, step))
