"""Runs that survive interruption, reproduce exactly, stop cleanly on NaN, and refuse bad input
before training starts."""

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.engine.checkpoint import LAST, NonFiniteLossError, TrainingInterrupted
from genseg_cli.engine.loop import run_training
from tests.conftest import write_pair
from tests.stages.test_cli import genseg

TIMING = {"train_time_s", "prepare_time_s"}
GENSEG_FAST = [
    "method=genseg",
    "method.pretrain.steps=2",
    "evaluation.tstr_steps=2",
    "method.pretrain.cache_dir=null",
    "mlo.arch_every=2",
]


def cfg_for(*overrides: str):
    return compose(
        "train",
        [
            "profile=debug",
            "trainer.precision=fp32",
            "trainer.steps=8",
            "trainer.val_every=2",
            "trainer.checkpoint_every=2",
            *overrides,
        ],
    )


def without_timing(metrics: dict) -> dict:
    out = {k: v for k, v in metrics.items() if k not in TIMING}
    if "generator" in out:
        out["generator"] = {k: v for k, v in out["generator"].items() if not k.endswith("_s")}
    return out


GENSEG_3D = [
    "dataset=hippocampus",
    *GENSEG_FAST,
    "generator.model.base_width=4",
    "generator.discriminator.base_width=4",
]


@pytest.mark.parametrize(
    "method",
    [
        ["method=baseline"],
        GENSEG_FAST,
        GENSEG_3D,
        [*GENSEG_FAST, "mlo.learn_synthetic_weight=true"],
        ["ssl=fixmatch", "n_unlabeled=6"],
        ["ssl=mean_teacher", "n_unlabeled=6"],
        ["ssl=cross_teaching", "n_unlabeled=6"],
        ["dataset=hippocampus", "ssl=fixmatch", "n_unlabeled=4"],
    ],
    ids=[
        "baseline",
        "genseg",
        "genseg-3d",
        "genseg-learned-lambda",
        "fixmatch",
        "mean-teacher",
        "cross-teaching",
        "fixmatch-3d",
    ],
)
def test_resumed_run_ends_exactly_like_an_uninterrupted_one(method, data_dir, tmp_path):
    whole = run_training(cfg_for(*method), tmp_path / "whole")
    with pytest.raises(TrainingInterrupted):
        run_training(cfg_for(*method, "trainer.stop_after=5"), tmp_path / "split")
    resumed = run_training(cfg_for(*method, f"resume={tmp_path / 'split'}"), tmp_path / "split")
    # through JSON, where an undefined (NaN) HD95 equals itself
    same = json.dumps(without_timing(resumed), sort_keys=True)
    assert same == json.dumps(without_timing(whole), sort_keys=True)
    history = [pd.read_csv(tmp_path / d / "history.csv") for d in ("whole", "split")]
    pd.testing.assert_frame_equal(*history)


def test_absurd_learning_rate_stops_with_the_level_and_step(data_dir, tmp_path):
    cfg = cfg_for("optim.optimizer.lr=1e30", "trainer.checkpoint_every=1")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss/seg=nan at step \d+") as err:
        run_training(cfg, tmp_path)
    assert "last good checkpoint" in str(err.value) and (tmp_path / LAST).is_file()


def test_nan_run_exits_non_zero_and_records_failure(data_dir, tmp_path):
    result = genseg(
        "train",
        "profile=debug",
        "trainer.steps=30",
        "optim.optimizer.lr=1e30",
        env={"GENSEG_OUTPUT_DIR": str(tmp_path)},
    )
    assert result.returncode == 3, result.stderr
    status = json.loads(next(tmp_path.rglob("status.json")).read_text())
    assert status["status"] == "failed" and "non-finite" in status["reason"]


def test_resume_refuses_a_different_config(data_dir, tmp_path):
    out = tmp_path / "out"
    first = genseg(
        "train",
        "profile=debug",
        "trainer.steps=6",
        "trainer.checkpoint_every=2",
        "trainer.stop_after=3",
        env={"GENSEG_OUTPUT_DIR": str(out)},
    )
    assert first.returncode == 4, first.stderr
    (run_dir,) = (out / "runs" / "jsrt" / "baseline").iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    refused = genseg("train", f"resume={run_dir}", "optim.optimizer.lr=0.5")
    assert refused.returncode == 2 and "optim.optimizer.lr" in refused.stdout + refused.stderr
    resumed = genseg("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"


def grey_folder(root: Path, n: int = 8) -> Path:
    for i in range(n):
        write_pair(root, f"case{i:02d}")
    return root


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda r: (r / "masks" / "case01.png").unlink(), "images without a mask: case01"),
        (
            lambda r: (
                write_pair(r / "x", "stray")
                or (r / "x" / "masks" / "stray.png").rename(r / "masks" / "stray.png")
            ),
            "masks without an image: stray",
        ),
        (lambda r: Image.new("L", (5, 5)).save(r / "masks" / "case02.png"), "sizes differ: case02"),
        (lambda r: (r / "images" / "case03.png").write_bytes(b"broken"), "cannot read"),
        (lambda r: None, "images are grey but dataset.channels=3"),
    ],
    ids=["orphan-image", "orphan-mask", "size-mismatch", "corrupt-image", "grey-vs-rgb"],
)
def test_bad_dataset_is_refused_before_training(breakage, message, tmp_path):
    root = grey_folder(tmp_path / "set")
    breakage(root)
    before = sorted(p.name for p in root.rglob("*"))
    cfg = compose(
        "train",
        [
            "profile=debug",
            "dataset=folder",
            f"dataset.root={root}",
            "n_labeled=3",
            "evaluation.ood=false",
        ],
    )
    with pytest.raises(GensegError, match=message):
        run_training(cfg, tmp_path / "run")
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing of the user's is touched
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_non_binary_mask_is_binarised_with_a_warning(tmp_path, caplog):
    root = grey_folder(tmp_path / "set")
    write_pair(root, "soft", mask_values=(0, 200))
    cfg = compose(
        "train",
        [
            "profile=debug",
            "dataset=folder",
            f"dataset.root={root}",
            "dataset.channels=1",
            "n_labeled=3",
            "evaluation.ood=false",
        ],
    )
    run_training(cfg, tmp_path / "run")
    assert "neither 0 nor 255" in caplog.text


def test_missing_ood_set_is_a_clear_error(data_dir, tmp_path):
    partial = tmp_path / "data"
    partial.mkdir()
    (partial / "jsrt").symlink_to(data_dir / "jsrt")
    cfg = compose("train", ["profile=debug", f"paths.data_dir={partial}"])
    cfg.evaluation.ood = True
    with pytest.raises(GensegError, match="out-of-domain set 'nlm_mc' .* evaluation.ood=false"):
        run_training(cfg, tmp_path / "run")


def test_unwritable_output_is_refused(data_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # works even as root, unlike chmod
    result = genseg("train", "profile=debug", env={"GENSEG_OUTPUT_DIR": str(blocker / "out")})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "cannot write runs to" in result.stderr
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("override", "text"),
    [
        ("dataset=lungz", "Could not find 'dataset/lungz'"),
        ("backbone=vgg1", "Could not find 'backbone/vgg1'"),
    ],
)
def test_unknown_dataset_or_backbone(override, text, tmp_path):
    result = genseg("train", override, env={"GENSEG_OUTPUT_DIR": str(tmp_path)})
    assert result.returncode != 0 and text in result.stderr


def test_one_failing_run_does_not_stop_a_sweep(data_dir, tmp_path):
    result = genseg(
        "train", "-m", "profile=debug", "n_labeled=1,3", env={"GENSEG_OUTPUT_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    statuses = {
        p.parent.name: json.loads(p.read_text())["status"]
        for p in tmp_path.glob("multiruns/*/*/status.json")
    }
    assert statuses == {"jsrt_unet_baseline_n1_s0": "failed", "jsrt_unet_baseline_n3_s0": "done"}


def test_sigterm_marks_the_run_interrupted_and_resumable(data_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "GENSEG_OUTPUT_DIR": str(tmp_path)}
    cmd = [
        str(Path(sys.executable).parent / "genseg"),
        "train",
        "profile=debug",
        "trainer.steps=100000",
        "trainer.checkpoint_every=2",
    ]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.rglob("last.pt")):
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 4
    status = json.loads(next(tmp_path.rglob("status.json")).read_text())
    assert status["status"] == "interrupted" and "resume=" in status["reason"]
