"""method=nnunet on real data: a JSRT run stopped and resumed from nnU-Net's checkpoint, scored
like every run and paired with the baseline by `genseg report`, its folders never holding a test
image; then evaluate, predict and generate on it, and a signal while it trains. A 3D run on
hippocampus."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from genseg_cli.core.errors import GensegError
from genseg_cli.engine.nnunet.method import nnunet_installed
from tests.conftest import DATA_DIR
from tests.engine.test_nnunet_settings import file_cases
from tests.stages.test_cli import GENSEG, genseg

# one thread: two threads of a loaded two-core machine slow nnU-Net's small convolutions ~20x
FAST = ["method=nnunet", "profile=debug", "trainer.num_threads=1", "trainer.progress=false"]


# ----- real runs: JSRT (2D) stopped and resumed, a baseline beside it; hippocampus (3D) ---------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    if not nnunet_installed():
        pytest.skip("nnunetv2 is not installed (pip install -e '.[nnunet]')")
    if not (DATA_DIR / "jsrt" / "images").is_dir():
        pytest.skip(f"real datasets not found in {DATA_DIR} (set GENSEG_DATA_DIR)")
    return tmp_path_factory.mktemp("nnunet_sweep")


@pytest.fixture(scope="module")
def stopped(sweep, tmp_path_factory) -> dict:
    """A JSRT nnU-Net run stopped after its first epoch (trainer.stop_after), and a copy of it
    as it stopped (outside the sweep, for a signal while it resumes)."""
    run = sweep / "jsrt" / "nnunet" / "seed0"
    out = genseg("train", "dataset=jsrt", *FAST, "trainer.stop_after=2", f"hydra.run.dir={run}")
    fold = run / "nnunet/results/Dataset001_jsrt/GensegTrainer__nnUNetPlans__2d/fold_0"
    latest = fold / "checkpoint_latest.pth"
    logged = torch.load(latest, weights_only=False)["logging"] if latest.is_file() else {}
    status = json.loads((run / "status.json").read_text())
    copy = tmp_path_factory.mktemp("signalled") / "seed0"
    if run.is_dir():
        shutil.copytree(run, copy)
    return {"run": run, "out": out, "fold": fold, "logged": logged, "status": status, "copy": copy}


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
    # predict: nnU-Net's label map of a test volume, with its header, as the run scored it
    from genseg_cli.evaluation.metrics import class_scores
    from genseg_cli.stages.predict import predict_folder

    nib = pytest.importorskip("nibabel")
    key, volumes = splits["test"][0], DATA_DIR / "hippocampus"
    (tmp_path / "new").mkdir()
    shutil.copy(volumes / "imagesTr" / f"{key}.nii.gz", tmp_path / "new")
    args = [f"run_dir={run}", f"input={tmp_path / 'new'}", f"output={tmp_path / 'labels'}"]
    assert predict_folder([*args, "device=cpu"])["n_masks"] == 1
    source, written = (nib.load(tmp_path / d / f"{key}.nii.gz") for d in ("new", "labels"))
    labels = np.asarray(written.dataobj)
    assert labels.shape == source.shape and np.allclose(written.affine, source.affine)
    truth = np.asarray(nib.load(volumes / "labelsTr" / f"{key}.nii.gz").dataobj)
    trained = pd.read_csv(run / "per_image.csv").set_index("id").loc[key, "dice"]
    dice = class_scores(labels, truth, ["anterior", "posterior"])["dice"]
    assert dice == pytest.approx(trained, abs=1e-4)


# ----- the stages after training on the finished JSRT run ---------------------------------------
def user_folder(resumed: Path, folder: Path, n: int) -> list[str]:
    """`n` of the run's test images (and masks) copied into `folder` (images/, masks/)."""
    ids = json.loads((resumed / "splits.json").read_text())["test"][:n]
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
        for key in ids:
            shutil.copy(DATA_DIR / "jsrt" / sub / f"{key}.png", folder / sub)
    return ids


def trained_dice(resumed: Path) -> dict[str, float]:
    rows = pd.read_csv(resumed / "per_image.csv")
    return dict(zip(rows[rows.set == "test"].id, rows[rows.set == "test"].dice, strict=True))


@pytest.mark.slow
def test_evaluate_scores_an_nnunet_run_as_training_did(resumed, tmp_path):
    from genseg_cli.stages.evaluate import evaluate_run_dir

    ids = user_folder(resumed, tmp_path / "mine", 2)
    args = [f"run_dir={resumed}", f"datasets=[{tmp_path / 'mine'}]", "device=cpu"]
    metrics, out = evaluate_run_dir([*args, f"out={tmp_path / 'kept'}"])
    assert metrics["run"]["method"] == "nnunet" and metrics["ood"]["mine"]["n"] == 2
    scored = pd.read_csv(out / "per_image.csv").set_index("id").dice
    # nnU-Net's predictor at each image's own shape, as the run scored its test split
    trained = trained_dice(resumed)
    assert [scored[i] for i in ids] == pytest.approx([trained[i] for i in ids], abs=1e-4)
    final, _ = evaluate_run_dir([*args, f"out={tmp_path / 'final'}", "weights=final"])
    assert final["weights_step"] == 4  # checkpoint_final.pth, which method.checkpoint=final kept
    assert final["ood"]["mine"]["dice_mean"] == pytest.approx(metrics["ood"]["mine"]["dice_mean"])
    # at the network's size: the prediction resized down and compared with the resized mask,
    # close to the original-size score but not that score itself
    model, kept = evaluate_run_dir([*args, f"out={tmp_path / 'model'}", "resolution=model"])
    assert model["run"]["resolution"] == "model" and model["ood"]["mine"]["n"] == 2
    small = pd.read_csv(kept / "per_image.csv").set_index("id").dice
    assert [small[i] for i in ids] == pytest.approx([scored[i] for i in ids], abs=0.05)
    assert [small[i] for i in ids] != pytest.approx([scored[i] for i in ids], abs=1e-6)


@pytest.mark.slow
def test_predict_writes_nnunets_masks_and_refuses_an_export(resumed, tmp_path):
    from genseg_cli.stages.predict import predict_folder

    ids = user_folder(resumed, tmp_path / "mine", 2)
    out = tmp_path / "masks"
    with pytest.raises(GensegError, match=r"nnU-Net run \(method=nnunet\).*export=onnx does"):
        predict_folder(
            [
                f"run_dir={resumed}",
                f"input={tmp_path}/mine/images",
                f"output={out}",
                "export=onnx",
                "device=cpu",
            ]
        )
    assert not out.exists()  # refused before any mask was written
    result = genseg(
        "predict",
        f"run_dir={resumed}",
        f"input={tmp_path}/mine/images",
        f"output={out}",
        "device=cpu",
    )
    assert result.returncode == 0, result.stderr
    trained = trained_dice(resumed)
    for key in ids:
        mask = np.asarray(Image.open(out / f"{key}.png"))
        truth = np.asarray(Image.open(tmp_path / "mine" / "masks" / f"{key}.png")) > 0
        assert mask.shape == truth.shape and set(np.unique(mask)) <= {0, 255}
        dice = 2 * (truth & (mask > 0)).sum() / (truth.sum() + (mask > 0).sum())
        assert dice == pytest.approx(trained[key], abs=1e-4)  # the mask the run scored


@pytest.mark.slow
def test_generate_and_a_teacher_refuse_an_nnunet_run_in_one_line(resumed, tmp_path):
    result = genseg("generate", f"run_dir={resumed}", "n=2", f"out={tmp_path / 'syn'}")
    assert result.returncode == 2, result.stderr
    line = " ".join(result.stderr.split())
    assert f"run {resumed} is an nnU-Net run (method=nnunet)" in line
    assert "method=separate or method=genseg" in line and "method.extra_pairs=DIR" in line
    assert "Traceback" not in result.stderr and not (tmp_path / "syn").exists()
    from genseg_cli.engine.restore import load_run

    with pytest.raises(GensegError, match="ssl.teacher_run does not apply to it; give a teacher"):
        load_run(resumed, "cpu").network("ssl.teacher_run")


@pytest.mark.slow
def test_a_signal_while_nnunet_trains_says_where_it_resumes(stopped, tmp_path):
    """SIGTERM during a resumed run's training: status.json and `genseg runs` name nnU-Net's
    checkpoint as it is on disk, never genseg's own wording."""
    from genseg_cli.engine.nnunet.finished import TRAINER, fold_folder
    from genseg_cli.engine.nnunet.trainer import GensegTrainer

    run, said_file = stopped["copy"], tmp_path / "said.txt"
    assert GensegTrainer.__name__ == TRAINER
    with said_file.open("w") as said_out:  # a file, not a pipe that could fill and block it
        process = subprocess.Popen(
            [GENSEG, "train", f"resume={run}"],
            stdout=said_out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        log, deadline = run / "train.log", time.monotonic() + 240
        try:
            while "resumed after epoch 1" not in (log.read_text() if log.is_file() else ""):
                alive = process.poll() is None and time.monotonic() < deadline
                assert alive, said_file.read_text()[-3000:]
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:  # a failed wait: leave no training behind
                process.kill()
    assert process.returncode == 4, said_file.read_text()[-3000:]
    reason = json.loads((run / "status.json").read_text())["reason"]
    fold = fold_folder(run, OmegaConf.load(run / "config.yaml"))
    assert fold == stopped["copy"] / stopped["fold"].relative_to(stopped["run"])
    if (fold / "checkpoint_final.pth").is_file():  # the signal came after training ended
        said = "nnU-Net had finished training (checkpoint_final.pth)"
    else:
        said = "nnU-Net's checkpoint_latest.pth holds epoch 1 of 2 (step 2); continue from it"
    assert reason.startswith(f"stopped by SIGTERM; {said}") and f"resume={run}" in reason
    listed = genseg("runs", str(run.parent))
    assert f"stopped seed0: stopped by SIGTERM; {said}" in " ".join(listed.stdout.split())
