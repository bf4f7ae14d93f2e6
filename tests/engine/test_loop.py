import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.engine.loop import run_training


def debug_cfg(*overrides: str):
    return compose("train", ["profile=debug", "trainer.precision=fp32", *overrides])


def test_short_run_writes_every_output(data_dir: Path, tmp_path: Path):
    metrics = run_training(debug_cfg("evaluation.ood=true"), tmp_path)
    assert {"splits.json", "metrics.json", "per_image.csv", "history.csv"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert (tmp_path / "checkpoints" / "best.pt").is_file()
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test"]["n"] == 62 and set(on_disk["ood"]) == {"nlm_mc", "nlm_sz"}
    per_image = pd.read_csv(tmp_path / "per_image.csv")
    assert per_image.groupby("set").size().to_dict() == {"nlm_mc": 138, "nlm_sz": 566, "test": 62}
    # the summary is computed from the per-image scores, not typed in
    test_rows = per_image[per_image.set == "test"]
    assert metrics["test"]["dice_mean"] == pytest.approx(test_rows.dice.mean())
    splits = json.loads((tmp_path / "splits.json").read_text())
    assert len(splits["train"]) == 7 and len(splits["val"]) == 2


def test_checkpoint_rebuilds_its_own_model(data_dir: Path, tmp_path: Path):
    run_training(debug_cfg(), tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints" / "best.pt", map_location="cpu")
    assert ckpt["config"]["backbone"]["name"] == "unet" and ckpt["step"] in (2, 4)


def test_same_seed_same_metrics_on_cpu(data_dir: Path, tmp_path: Path):
    a = run_training(debug_cfg("seed=3"), tmp_path / "a")
    b = run_training(debug_cfg("seed=3"), tmp_path / "b")
    assert a["test"] == b["test"] and a["val_dice"] == b["val_dice"]


def test_training_really_learns_lungs(data_dir: Path, tmp_path: Path):
    """80 steps at 64 px already segment lungs far better than chance (Dice of ~0.4 for an
    all-foreground guess); a broken loss, augmentation or evaluation would fail this."""
    metrics = run_training(
        debug_cfg("trainer.steps=80", "trainer.val_every=20", "data.batch_size=4"), tmp_path
    )
    assert metrics["test"]["dice_mean"] > 0.85, metrics["test"]


def test_unknown_precision_is_explained():
    with pytest.raises(GensegError, match="trainer.precision=fp8"):
        resolve_runtime("cpu", "fp8")


def test_cuda_requested_without_cuda_is_explained():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(GensegError, match="CUDA is not available"):
        resolve_runtime("cuda", "auto")


def test_tensorboard_events_are_written_when_installed(data_dir: Path, tmp_path: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_training(debug_cfg("trainer.tensorboard=true"), tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    steps = [e.step for e in events.Scalars("loss/seg")]
    assert steps == [1, 2, 3, 4]
