"""Resumable training: the periodic `checkpoints/last.pt` and what restores a killed run.

A checkpoint holds the method's full state (segmenter, generator, discriminator, alphas, every
optimiser, scheduler and scaler), the loop's progress (step, best score, history, time spent
training) and the global random generators, all as tensors and plain types: it is read with
weights_only=True. The data stream is replayed on resume (same seeds, the first `step` batches
drawn and dropped), so a resumed CPU run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import load_torch, save_torch
from genseg_cli.methods.base import Method

LAST = "checkpoints/last.pt"


@dataclass
class Progress:
    """Where the loop is: last finished step, best validation so far, rows logged so far, and
    the seconds spent training up to that step (over every resumption)."""

    step: int = 0
    best: dict = field(default_factory=lambda: {"step": 0, "val_dice": -1.0})
    history: list[dict] = field(default_factory=list)
    train_time_s: float = 0.0


def rng_state() -> dict:
    """The global random generators as tensors and plain numbers (weights_only-loadable)."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": int(version),
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()`'s generators. A checkpoint loaded onto a GPU carries these byte
    tensors there too, and the generators take CPU tensors only: each comes back first."""
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].cpu().numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([gpu_state.cpu() for gpu_state in state["cuda"]])


def save_last(run_dir: Path, method: Method, progress: Progress) -> None:
    save_torch(
        run_dir / LAST,
        {
            "method": method.state_dict(),
            "step": progress.step,
            "best": progress.best,
            "history": progress.history,
            "train_time_s": progress.train_time_s,
            "rng": rng_state(),
        },
    )


def drop_last(run_dir: Path) -> int:
    """Remove the resumable checkpoint of a run that ended done; returns the bytes freed.

    Only a stopped or failed run resumes from it, and it holds every network and optimiser
    state (about 170 MB for a GenSeg run), so a finished run keeps it only when asked
    (trainer.keep_last=true, for `genseg evaluate weights=final`)."""
    path = run_dir / LAST
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def load_last(run_dir: Path, method: Method) -> tuple[Progress, dict] | None:
    """Restore `method` from last.pt; returns the loop's progress and the saved RNG state."""
    path = run_dir / LAST
    if not path.is_file():
        return None
    state = load_torch(path, map_location=method.runtime.device)
    method.load_state_dict(state["method"])
    progress = Progress(
        state["step"], state["best"], state["history"], float(state.get("train_time_s", 0.0))
    )
    return progress, state["rng"]


class NonFiniteLossError(GensegError):
    """A loss became NaN or infinite; the run stops and keeps its last good checkpoint."""

    exit_code = 3


def check_finite(losses: dict[str, float], step: int, run_dir: Path) -> None:
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if not bad:
        return
    key, value = next(iter(bad.items()))
    last = run_dir / LAST
    kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was kept"
    raise NonFiniteLossError(
        f"non-finite {key}={value} at step {step} (level: {key.split('/')[-1]}); training "
        f"stopped and {kept}. Lower the learning rate or set trainer.grad_clip"
    )


class TrainingInterrupted(GensegError):
    """The run stopped before its last step (trainer.stop_after, SIGINT, SIGTERM); it is
    resumable with resume=RUN_DIR."""

    exit_code = 4
