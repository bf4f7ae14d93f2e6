"""method=nnunet without training: its settings and plans, nnU-Net's logits, the raw dataset
and GenSeg's extra pairs, its failures, and what a stopped nnU-Net run resumes from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
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
from genseg_cli.engine.nnunet.plans import adjust
from genseg_cli.engine.nnunet.predict import as_logits, nnunet_input

CPU = resolve_runtime("cpu", "fp32", False)


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


def test_resume_point_says_what_an_nnunet_run_continues_from(tmp_path):
    from genseg_cli.engine.nnunet.finished import FINAL, LATEST, PLANNED, fold_folder
    from genseg_cli.engine.run_kind import resume_point

    cfg, run = compose("train", ["method=nnunet", "profile=debug"]), tmp_path / "run"
    command = f"genseg train resume={run}"
    assert resume_point(run, cfg).endswith(f"from the start with: {command}")
    Folders.of(run, "jsrt").make()
    (run / "nnunet" / PLANNED).write_text(json.dumps({"configuration": "2d"}))
    assert "saved no checkpoint yet (its planned data is kept)" in resume_point(run, cfg)
    fold = fold_folder(run, cfg)
    fold.mkdir(parents=True)
    torch.save({"current_epoch": 1, "network_weights": {}}, fold / LATEST)
    said = f"nnU-Net's {LATEST} holds epoch 1 of 2 (step 2); continue from it with: {command}"
    assert resume_point(run, cfg) == said
    (fold / FINAL).write_bytes(b"")
    assert "nnU-Net had finished training" in resume_point(run, cfg)
    # a run of genseg's own loop keeps its wording
    own = compose("train", ["profile=debug"])
    assert resume_point(run, own) == f"continue from step 1 (no checkpoint yet) with: {command}"


def finished_nnunet_run(root: Path) -> Path:
    """A done nnU-Net run's files as the stages after training read them (its checkpoint a
    stand-in: nothing here predicts)."""
    from omegaconf import OmegaConf

    from genseg_cli.engine.nnunet.finished import FINAL, PLANNED, fold_folder

    cfg, run = compose("train", ["method=nnunet", "profile=debug"]), root / "run"
    Folders.of(run, "jsrt").make()
    OmegaConf.save(cfg, run / "config.yaml")
    (run / "splits.json").write_text(json.dumps({"train": ["a"], "val": ["b"], "test": ["c"]}))
    (run / "status.json").write_text(json.dumps({"status": "done"}))
    (run / "nnunet" / PLANNED).write_text(json.dumps({"configuration": "2d"}))
    fold_folder(run, cfg).mkdir(parents=True)
    (fold_folder(run, cfg) / FINAL).write_bytes(b"")
    return run


def test_stages_without_a_model_for_nnunet_refuse_it_in_one_line(tmp_path):
    from genseg_cli.engine.restore import load_run
    from genseg_cli.stages.generate import generate_pairs

    run = finished_nnunet_run(tmp_path)
    with pytest.raises(GensegError, match=r"is an nnU-Net run .* generate does not apply"):
        generate_pairs([f"run_dir={run}", "n=2", f"out={tmp_path / 'syn'}", "device=cpu"])
    assert not (tmp_path / "syn").exists()
    with pytest.raises(GensegError, match=r"export=onnx does not apply .*checkpoint_final.pth"):
        load_run(run, "cpu").network("export=onnx")
    next(run.rglob("checkpoint_final.pth")).unlink()  # the fold gone: named, nothing loaded
    with pytest.raises(GensegError, match=r"is an nnU-Net run but lacks .*checkpoint_final.pth"):
        load_run(run, "cpu")
