"""method=nnunet: nnU-Net v2 on the run's own split, interrupted and resumed, scored like every
run and paired with the baseline by `genseg report`; its folders never hold a test image."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.data.run_data import RunData
from genseg_cli.data.samples import Sample
from genseg_cli.data.splits import Splits
from genseg_cli.data.writers import PairWriter
from genseg_cli.engine.loop import build_method
from genseg_cli.engine.nnunet import runner
from genseg_cli.engine.nnunet.layout import Folders, check_extra_pairs, write_raw_dataset
from genseg_cli.engine.nnunet.method import nnunet_installed
from genseg_cli.engine.nnunet.plans import adjust
from genseg_cli.engine.nnunet.predict import as_logits, nnunet_input
from tests.conftest import DATA_DIR
from tests.stages.test_cli import genseg

CPU = resolve_runtime("cpu", "fp32", False)
# one thread: two threads of a loaded two-core machine slow nnU-Net's small convolutions ~20x
FAST = ["method=nnunet", "profile=debug", "trainer.num_threads=1", "trainer.progress=false"]


def nnunet_method(*overrides: str):
    cfg = compose("train", ["method=nnunet", "profile=debug", *overrides])
    return cfg, build_method(cfg, CPU)


def fake_pairs(prefix: str, n: int) -> list[Sample]:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        mask = np.zeros((24, 20), bool)
        mask[6:18, 5:15] = True
        pairs.append(Sample(f"{prefix}{i}", rng.integers(0, 255, (24, 20, 1), np.uint8), mask))
    return pairs


def file_cases(folder: Path) -> set[str]:
    """Case names of an nnU-Net folder's files (channel suffix and extensions dropped)."""
    names = set()
    for path in folder.iterdir():
        stem = path.name.split(".")[0]
        names.add(stem.removesuffix("_0000").removesuffix("_seg"))
    return names


# ----- settings, plans, logits (no training) ------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("method.epochs=0", "method.epochs=0 must be at least 1"),
        ("method.checkpoint=last", "method.checkpoint=last must be one of final, best"),
        ("backbone=segformer", "backbone=segformer does not apply to method=nnunet"),
        ("ssl=fixmatch", "method=nnunet trains on the labelled pairs only"),
        ("method.configuration=3d_fullres", "does not fit the 2D dataset 'jsrt'"),
    ],
)
def test_settings_nnunet_cannot_use_are_refused_in_one_line(override, words):
    with pytest.raises(GensegError, match=words):
        nnunet_method(override)


def test_the_profiles_set_the_budget():
    cpu = compose("train", ["method=nnunet"]).method
    paper = compose("train", ["method=nnunet", "profile=paper"]).method
    assert cpu.epochs * cpu.iterations_per_epoch == compose("train", []).trainer.steps
    assert (paper.epochs, paper.iterations_per_epoch) == (1000, 250)  # nnU-Net's defaults


def test_plan_adjustments_keep_the_patch_a_multiple_of_the_networks_stride():
    configuration = {
        "batch_size": 12,
        "patch_size": [224, 192],
        "architecture": {
            "arch_kwargs": {
                "strides": [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2], [2, 2]],
                "features_per_stage": [32, 64, 128, 256, 512, 512],
            }
        },
    }
    adjust(configuration, {"batch_size": 2, "max_patch": 100, "width": 8})
    assert configuration["batch_size"] == 2
    assert configuration["patch_size"] == [96, 96]  # 100 down to a multiple of 2**5
    arch = configuration["architecture"]["arch_kwargs"]
    assert arch["features_per_stage"] == [8, 16, 32, 64, 128, 128]


def test_nnunets_probabilities_become_genseg_logits():
    p = np.array([0.2, 0.7, 0.5], np.float32)
    two_class = np.stack([1 - p, p])[:, None, None]  # C x 1 x 1 x W, a 2D image
    logits = as_logits(two_class, dims=2)
    assert logits.shape == (1, 1, 3)
    assert torch.allclose(torch.sigmoid(logits[0, 0]), torch.from_numpy(p), atol=1e-5)
    three = np.random.default_rng(0).dirichlet([1, 1, 1], size=(2, 2, 2)).transpose(3, 0, 1, 2)
    assert (as_logits(three, dims=3).argmax(0).numpy() == three.argmax(0)).all()
    image, props = nnunet_input(fake_pairs("a", 1)[0], dims=2)
    assert image.shape == (1, 1, 24, 20) and props == {"spacing": [999.0, 1.0, 1.0]}


# ----- the raw dataset and GenSeg's pairs -------------------------------------------------------
def test_extra_pairs_join_the_training_ids_only(tmp_path):
    _, method = nnunet_method()
    writer = PairWriter(tmp_path / "Dataset900_Syn", "nnunet", channels=1)
    for i in range(2):
        image = np.zeros((1, 16, 16), np.float32)
        writer.add(f"syn_{i:05d}", image, np.eye(16, dtype=np.uint8))
    writer.close("synthetic")
    check_extra_pairs(tmp_path / "Dataset900_Syn", method.spec)
    folders = Folders.of(tmp_path / "run", "jsrt")
    train, val = fake_pairs("t", 3), fake_pairs("v", 2)
    fold = write_raw_dataset(folders, train, val, method.spec, None, tmp_path / "Dataset900_Syn")
    extra = ["extra_syn_00000", "extra_syn_00001"]
    assert fold == {"train": ["t0", "t1", "t2", *extra], "val": ["v0", "v1"]}
    assert file_cases(folders.raw_dataset / "imagesTr") == {*fold["train"], *fold["val"]}
    meta = json.loads((folders.raw_dataset / "dataset.json").read_text())
    assert set(meta["dataset"]) == {*fold["train"], *fold["val"]}


def test_extra_pairs_of_other_data_are_refused(tmp_path):
    _, method = nnunet_method()
    writer = PairWriter(tmp_path / "Dataset901_Rgb", "nnunet", channels=3)
    writer.add("syn_00000", np.zeros((3, 8, 8), np.float32), np.eye(8, dtype=np.uint8))
    writer.close("colour pairs")
    with pytest.raises(GensegError, match="its images have 3 channels, dataset 'jsrt' 1"):
        check_extra_pairs(tmp_path / "Dataset901_Rgb", method.spec)
    with pytest.raises(GensegError, match="no such folder"):
        check_extra_pairs(tmp_path / "absent", method.spec)


def small_run_data() -> RunData:
    train, val = fake_pairs("t", 3), fake_pairs("v", 2)
    splits = Splits(["t0", "t1", "t2"], ["v0", "v1"], [], ["t0", "t1", "t2", "v0", "v1"])
    return RunData(splits, train, val, [])


def test_nnunets_failure_is_a_one_line_error_and_a_stop_passes_through(tmp_path, monkeypatch):
    cfg, method = nnunet_method()

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runner, "plan_and_preprocess", out_of_memory)
    with pytest.raises(GensegError, match="nnU-Net failed: RuntimeError: CUDA out of memory"):
        runner.run_nnunet(cfg, method, small_run_data(), tmp_path / "failed")

    def stopped(*args, **kwargs):  # Ctrl-C (or the SIGTERM handler's BaseException)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "plan_and_preprocess", stopped)
    with pytest.raises(KeyboardInterrupt):
        runner.run_nnunet(cfg, method, small_run_data(), tmp_path / "stopped")
    assert "nnUNet_raw" not in os.environ  # nnU-Net's paths were the run's only while it ran


# ----- real runs: JSRT (2D) stopped and resumed, a baseline beside it; hippocampus (3D) ---------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    if not nnunet_installed():
        pytest.skip("nnunetv2 is not installed (pip install -e '.[nnunet]')")
    if not (DATA_DIR / "jsrt" / "images").is_dir():
        pytest.skip(f"real datasets not found in {DATA_DIR} (set GENSEG_DATA_DIR)")
    return tmp_path_factory.mktemp("nnunet_sweep")


@pytest.fixture(scope="module")
def stopped(sweep) -> dict:
    """A JSRT nnU-Net run stopped after its first epoch (trainer.stop_after)."""
    run = sweep / "jsrt" / "nnunet" / "seed0"
    out = genseg("train", "dataset=jsrt", *FAST, "trainer.stop_after=2", f"hydra.run.dir={run}")
    fold = run / "nnunet/results/Dataset001_jsrt/GensegTrainer__nnUNetPlans__2d/fold_0"
    latest = fold / "checkpoint_latest.pth"
    logged = torch.load(latest, weights_only=False)["logging"] if latest.is_file() else {}
    status = json.loads((run / "status.json").read_text())
    return {"run": run, "out": out, "fold": fold, "logged": logged, "status": status}


@pytest.fixture(scope="module")
def resumed(stopped) -> Path:
    out = genseg("train", f"resume={stopped['run']}")
    assert out.returncode == 0, out.stderr[-3000:]
    return stopped["run"]


@pytest.mark.slow
def test_a_stopped_run_is_interrupted_and_resumes_from_nnunets_checkpoint(stopped, resumed):
    out, logged = stopped["out"], stopped["logged"]
    assert out.returncode == 4, out.stderr[-3000:]
    status = stopped["status"]
    assert status["status"] == "interrupted", status
    assert "stopped after epoch 1 (step 2" in status["reason"] and "resume=" in status["reason"]
    assert len(logged["train_losses"]) == 1  # checkpoint_latest.pth after the first epoch
    history = pd.read_csv(resumed / "history.csv")
    assert history.epoch.tolist() == [1, 2]
    # the first epoch is the stopped run's, continued from its checkpoint, not trained again
    assert history["loss/seg"][0] == pytest.approx(float(logged["train_losses"][0]))
    assert json.loads((resumed / "status.json").read_text())["status"] == "done"
    assert (stopped["fold"] / "checkpoint_final.pth").is_file()
    again = genseg("train", f"resume={resumed}")  # a finished run is never trained again
    assert again.returncode == 2 and "already done" in again.stderr


@pytest.mark.slow
def test_the_jsrt_run_is_scored_like_any_run_and_paired_with_the_baseline(sweep, resumed):
    baseline = sweep / "jsrt" / "baseline" / "seed0"
    out = genseg(
        "train",
        "dataset=jsrt",
        "method=baseline",
        "profile=debug",
        "trainer.num_threads=1",
        "trainer.progress=false",
        f"hydra.run.dir={baseline}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["run"]["method"] == "nnunet" and metrics["run"]["steps"] == 4
    assert metrics["nnunet"]["configuration"] == "2d" and metrics["nnunet"]["version"]
    splits = json.loads((resumed / "splits.json").read_text())
    assert metrics["test"]["n"] == len(splits["test"]) and metrics["test"]["dice_mean"] > 0.0
    assert metrics["machine"]["precision"] == metrics["run"]["precision"]
    per_image = pd.read_csv(resumed / "per_image.csv")
    assert sorted(per_image.id) == sorted(splits["test"])
    report = genseg("report", f"sweep_dir={sweep}")
    assert report.returncode == 0, report.stderr
    paired = pd.read_csv(sweep / "report" / "paired.csv")
    row = paired[paired.method == "nnunet"]
    assert len(row) == 1 and row.reference.iloc[0] == "baseline" and row.n_pairs.iloc[0] == 1


@pytest.mark.slow
def test_nnunets_folders_hold_exactly_the_runs_train_and_validation_ids(resumed):
    splits = json.loads((resumed / "splits.json").read_text())
    expected = set(splits["train"]) | set(splits["val"])
    raw = resumed / "nnunet/raw/Dataset001_jsrt"
    pre = resumed / "nnunet/preprocessed/Dataset001_jsrt"
    assert file_cases(raw / "imagesTr") == expected == file_cases(raw / "labelsTr")
    assert set(json.loads((raw / "dataset.json").read_text())["dataset"]) == expected
    assert file_cases(pre / "nnUNetPlans_2d") == expected
    assert file_cases(pre / "gt_segmentations") == expected
    folds = json.loads((pre / "splits_final.json").read_text())
    assert folds == [{"train": splits["train"], "val": splits["val"]}]
    unseen = set(splits["test"]) | (set(splits["pool"]) - expected)
    names = {p.name for p in (resumed / "nnunet").rglob("*")}
    leaked = sorted(
        i for i in unseen for name in names if name.startswith(f"{i}.") or name.startswith(f"{i}_")
    )
    assert not leaked, leaked


@pytest.mark.slow
def test_a_3d_run_on_hippocampus(tmp_path):
    if not nnunet_installed():
        pytest.skip("nnunetv2 is not installed (pip install -e '.[nnunet]')")
    if not (DATA_DIR / "hippocampus" / "imagesTr").is_dir():
        pytest.skip(f"real dataset hippocampus not found in {DATA_DIR}")
    run = tmp_path / "hippocampus"
    out = genseg("train", "dataset=hippocampus", *FAST, f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["nnunet"]["configuration"] == "3d_fullres"
    assert {"dice_anterior_mean", "dice_posterior_mean", "hd95_mean"} <= set(metrics["test"])
    splits = json.loads((run / "splits.json").read_text())
    assert metrics["test"]["n"] == len(splits["test"])
    raw = run / "nnunet/raw/Dataset001_hippocampus"
    assert file_cases(raw / "labelsTr") == set(splits["train"]) | set(splits["val"])
