"""Runs that survive interruption, reproduce exactly, stop cleanly on NaN, and refuse bad input
before training starts."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.engine.checkpoint import LAST, NonFiniteLossError, TrainingInterrupted
from genseg_cli.engine.loop import run_training
from tests.conftest import write_pair
from tests.stages.test_cli import GENSEG, genseg

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
    """Metrics without the wall-clock times (train_time_s, the generator's pretrain_time_s,
    the TSTR diagnostic's time_s, ...), which differ between any two runs."""
    return {
        k: without_timing(v) if isinstance(v, dict) else v
        for k, v in metrics.items()
        if not k.endswith("time_s")
    }


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
        [*GENSEG_FAST, "generator.skip_augment=[albumentations.Affine]"],
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
        "genseg-generator-pairs",
        "fixmatch",
        "mean-teacher",
        "cross-teaching",
        "fixmatch-3d",
    ],
)
def test_resumed_run_ends_exactly_like_an_uninterrupted_one(method, data_dir, tmp_path):
    if "dataset=hippocampus" in method and not (data_dir / "hippocampus").is_dir():
        pytest.skip(f"hippocampus not found in {data_dir}")
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


def test_mask_of_other_values_is_refused_naming_file_and_values(tmp_path):
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
    with pytest.raises(GensegError, match=r"soft\.png \(0, 200\)"):
        run_training(cfg, tmp_path / "run")


def test_missing_ood_set_is_skipped_and_said(data_dir, tmp_path, caplog):
    """A run trains and scores the sets it has; metrics.json and the log name each absent one
    with the command that gets it (a present but broken set is still refused: verified_ids)."""
    partial = tmp_path / "data"
    partial.mkdir()
    (partial / "jsrt").symlink_to(data_dir / "jsrt")
    (partial / "nlm_sz").symlink_to(data_dir / "nlm_sz")
    cfg = compose("train", ["profile=debug", f"paths.data_dir={partial}"])
    cfg.evaluation.ood = True
    metrics = run_training(cfg, tmp_path / "run")
    assert set(metrics["ood"]) == {"nlm_sz"} and set(metrics["ood_absent"]) == {"nlm_mc"}
    why = metrics["ood_absent"]["nlm_mc"]
    assert f"not in {partial}" in why and f"genseg data download nlm_mc --to {partial}" in why
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["ood_absent"] == {
        "nlm_mc": why
    }
    assert any("nlm_mc" in r.message and r.levelname == "WARNING" for r in caplog.records)


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
        ("dataset=lungz", "there is no dataset 'lungz'"),
        ("backbone=vgg1", "there is no backbone 'vgg1'"),
    ],
)
def test_unknown_dataset_or_backbone(override, text, tmp_path):
    result = genseg("train", override, env={"GENSEG_OUTPUT_DIR": str(tmp_path)})
    assert result.returncode == 2 and text in result.stderr
    assert not any(tmp_path.iterdir())  # refused before Hydra made a run folder


def test_a_misspelt_transform_to_skip_is_refused_before_training(data_dir, tmp_path):
    result = genseg(
        "train",
        "profile=debug",
        "method=separate",
        "generator.skip_augment=[albumentations.Afine]",
        env={"GENSEG_OUTPUT_DIR": str(tmp_path)},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "generator.skip_augment names albumentations.Afine" in result.stderr
    assert not list(tmp_path.rglob("history.csv"))


def test_one_failing_run_does_not_stop_a_sweep(data_dir, tmp_path):
    result = genseg(
        "train", "-m", "profile=debug", "n_labeled=1,3", env={"GENSEG_OUTPUT_DIR": str(tmp_path)}
    )
    # the sweep goes on after the failed run, then exits 1 naming it
    assert result.returncode == 1, result.stderr
    assert "jsrt_unet_baseline_n1_s0: n_labeled=1 is too small" in result.stderr
    statuses = {
        p.parent.name: json.loads(p.read_text())["status"]
        for p in tmp_path.glob("multiruns/*/*/status.json")
    }
    assert statuses == {"jsrt_unet_baseline_n1_s0": "failed", "jsrt_unet_baseline_n3_s0": "done"}


SIGNAL_RUN = [
    "profile=debug",
    "trainer.precision=fp32",
    "data.image_size=32",
    "trainer.steps=16",
    "trainer.val_every=4",
    "trainer.checkpoint_every=2",
    "dataset=folder",
    "dataset.channels=1",
    "n_labeled=4",
]


@pytest.fixture(scope="module")
def signal_set(tmp_path_factory) -> Path:
    return grey_folder(tmp_path_factory.mktemp("signal") / "signal_set", n=12)


@pytest.fixture(scope="module")
def uninterrupted(signal_set: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    result = genseg(
        "train", *SIGNAL_RUN, f"dataset.root={signal_set}", env={"GENSEG_OUTPUT_DIR": str(out)}
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = (out / "runs" / "signal_set" / "baseline").iterdir()
    return run_dir


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_run_as_interrupted_and_its_resume_ends_exactly(
    signum, signal_set: Path, uninterrupted: Path, tmp_path: Path
):
    """Ctrl-C (SIGINT) as a kill or a Slurm pre-emption (SIGTERM): status interrupted with the
    resume command, no traceback, exit 4; the resumed run ends with the uninterrupted run's
    metrics and history, and with the whole training time."""
    env = {**os.environ, "GENSEG_OUTPUT_DIR": str(tmp_path), "COLUMNS": "200"}
    cmd = [GENSEG, "train", *SIGNAL_RUN, f"dataset.root={signal_set}"]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not list(tmp_path.rglob("last.pt")):
        time.sleep(0.02)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 4, stderr.decode()
    assert "Traceback" not in stdout.decode() + stderr.decode()
    (run_dir,) = (tmp_path / "runs" / "signal_set" / "baseline").iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted"
    assert signal.Signals(signum).name in status["reason"]
    assert f"genseg train resume={run_dir}" in status["reason"]
    assert f"resume={run_dir}" in " ".join((stdout + stderr).decode().split())

    # what the first part took is in last.pt; add a known amount to see it counted at the end
    import torch

    last = torch.load(run_dir / LAST, weights_only=True)
    assert 0 < last["step"] < 16
    earlier = last["train_time_s"] + 1000.0
    last["train_time_s"] = earlier
    torch.save(last, run_dir / LAST)
    started = time.perf_counter()
    resumed = genseg("train", f"resume={run_dir}", env={"GENSEG_OUTPUT_DIR": str(tmp_path)})
    took = time.perf_counter() - started
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    whole, again = (json.loads((d / "metrics.json").read_text()) for d in (uninterrupted, run_dir))
    assert json.dumps(without_timing(again), sort_keys=True) == json.dumps(
        without_timing(whole), sort_keys=True
    )
    pd.testing.assert_frame_equal(
        *(pd.read_csv(d / "history.csv") for d in (uninterrupted, run_dir))
    )
    assert earlier < again["train_time_s"] < earlier + took


def test_train_time_counts_every_part_of_a_resumed_run(data_dir, tmp_path):
    with pytest.raises(TrainingInterrupted):
        run_training(cfg_for("trainer.stop_after=4"), tmp_path)
    import torch

    last = torch.load(tmp_path / LAST, weights_only=True)
    assert last["step"] == 4 and last["train_time_s"] > 0
    last["train_time_s"] = 500.0  # as if the first part had taken 500 s
    torch.save(last, tmp_path / LAST)
    metrics = run_training(cfg_for(f"resume={tmp_path}"), tmp_path)
    assert 500.0 < metrics["train_time_s"] < 600.0


class Pickled:
    """Any Python object: torch.save pickles it, and loading it would run its class's code."""


@pytest.mark.parametrize("name", ["last.pt", "best.pt", "generator.pt"])
def test_a_checkpoint_holding_a_pickled_object_is_refused(name, uninterrupted, tmp_path):
    """Each reader of a checkpoint (resume, evaluate/predict, generate) loads weights only."""
    import shutil
    from types import SimpleNamespace

    import torch

    from genseg_cli.engine.checkpoint import load_last
    from genseg_cli.engine.restore import load_generator, load_run

    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    run = load_run(run_dir, "cpu")
    torch.save({"model": {}, "extra": Pickled()}, run_dir / "checkpoints" / name)
    read = {
        "last.pt": lambda: load_last(run_dir, SimpleNamespace(runtime=run.runtime)),
        "best.pt": lambda: load_run(run_dir, "cpu"),
        "generator.pt": lambda: load_generator(run),
    }[name]
    with pytest.raises(GensegError, match=f"{name} holds Python objects besides tensors"):
        read()


def test_every_checkpoint_of_a_run_loads_with_weights_only(data_dir, tmp_path):
    import torch

    with pytest.raises(TrainingInterrupted):
        run_training(cfg_for(*GENSEG_FAST, "trainer.stop_after=2"), tmp_path)
    for name in ("last.pt", "best.pt"):
        torch.load(tmp_path / "checkpoints" / name, weights_only=True)
    run_training(cfg_for(*GENSEG_FAST, f"resume={tmp_path}"), tmp_path)
    torch.load(tmp_path / "checkpoints" / "generator.pt", weights_only=True)


def test_a_refused_resume_of_a_finished_run_leaves_it_done(signal_set: Path, uninterrupted):
    before = {p: p.read_bytes() for p in uninterrupted.rglob("*") if p.is_file()}
    for extra in (["optim.optimizer.lr=0.5"], []):
        result = genseg("train", f"resume={uninterrupted}", *extra)
        assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "already done" in result.stderr
    after = {p: p.read_bytes() for p in uninterrupted.rglob("*") if p.is_file()}
    assert after == before  # status.json still says done; .hydra/ and train.log untouched


def test_keep_final_keeps_and_scores_the_last_steps_weights(data_dir, tmp_path):
    import torch

    from genseg_cli.core.files import load_torch
    from genseg_cli.engine.loop import BEST

    # a step size at which validation Dice goes up and down on the CPU (on a GPU the trajectory
    # differs, so the premise below is pinned to the CPU)
    shaky = ["optim.optimizer.lr=0.05", "trainer.device=cpu"]
    chosen = run_training(cfg_for(*shaky), tmp_path / "best_val")
    assert chosen["best_step"] < 8  # this run's best validation is not its last step ...
    final = run_training(cfg_for(*shaky, "trainer.keep=final"), tmp_path / "final")
    assert final["best_step"] == 8  # ... so keeping the final weights is a different choice
    history = pd.read_csv(tmp_path / "final" / "history.csv")
    assert final["val_dice"] == history["val/dice"].dropna().iloc[-1]
    kept = load_torch(tmp_path / "final" / BEST)["model"]
    last = load_torch(tmp_path / "final" / LAST)["method"]["segmenter"]
    assert kept.keys() == last.keys() and all(torch.equal(kept[k], last[k]) for k in kept)
    assert final["test"] != chosen["test"]  # the kept weights are the ones scored
