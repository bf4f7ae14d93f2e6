"""evaluate, predict (+ export) and generate on a real finished run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.stages.test_cli import genseg

SEPARATE = [
    "profile=debug",
    "method=separate",
    "method.pretrain.steps=2",
    "method.pretrain.cache_dir=null",
    "trainer.precision=fp32",
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real datasets not found")
    out = tmp_path_factory.mktemp("outputs")
    result = genseg("train", *SEPARATE, env={"GENSEG_OUTPUT_DIR": str(out)})
    assert result.returncode == 0, result.stderr
    (run_dir,) = (out / "runs" / "jsrt" / "separate").iterdir()
    return run_dir


def test_evaluate_reproduces_the_training_scores(finished_run: Path):
    result = genseg("evaluate", f"run_dir={finished_run}")
    assert result.returncode == 0, result.stderr
    trained = json.loads((finished_run / "metrics.json").read_text())
    again = json.loads((finished_run / "evaluate" / "metrics.json").read_text())
    assert again["test"] == trained["test"]
    assert set(again["ood"]) == {"nlm_mc", "nlm_sz"}


def test_evaluate_on_a_user_folder(finished_run: Path, data_dir: Path, tmp_path: Path):
    folder = tmp_path / "mine"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
        for key in ("MCUCXR_0001_0", "MCUCXR_0002_0"):
            shutil.copy(data_dir / "nlm_mc" / sub / f"{key}.png", folder / sub)
    out = tmp_path / "eval"
    result = genseg("evaluate", f"run_dir={finished_run}", f"datasets=[{folder}]", f"out={out}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"] is None and metrics["ood"]["mine"]["n"] == 2


def test_stages_refuse_unfinished_runs(finished_run: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(finished_run, broken)
    (broken / "status.json").write_text(json.dumps({"status": "failed", "reason": "x"}))
    result = genseg("evaluate", f"run_dir={broken}")
    assert result.returncode == 2 and "not finished (status: failed)" in result.stderr


def test_unknown_argument_is_named(finished_run: Path):
    result = genseg("evaluate", f"run_dir={finished_run}", "dataset=jsrt")
    assert result.returncode == 2 and "unknown argument 'dataset'" in result.stderr


def test_predict_writes_masks_at_original_size(finished_run: Path, data_dir, tmp_path: Path):
    images = tmp_path / "new"
    images.mkdir()
    for key in ("MCUCXR_0001_0", "CHNCXR_0001_0"):
        source = "nlm_mc" if key.startswith("MC") else "nlm_sz"
        shutil.copy(data_dir / source / "images" / f"{key}.png", images)
    result = genseg(
        "predict", f"run_dir={finished_run}", f"input={images}", f"output={tmp_path / 'masks'}"
    )
    assert result.returncode == 0, result.stderr
    for key in ("MCUCXR_0001_0", "CHNCXR_0001_0"):
        mask = np.asarray(Image.open(tmp_path / "masks" / f"{key}.png"))
        assert mask.shape == np.asarray(Image.open(images / f"{key}.png")).shape[:2]
        assert set(np.unique(mask)) <= {0, 255}


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_pytorch(finished_run: Path, data_dir, tmp_path: Path, fmt: str):
    images = tmp_path / "new"
    images.mkdir()
    shutil.copy(data_dir / "jsrt" / "images" / "JPCLN001.png", images)
    out = tmp_path / "out"
    result = genseg(
        "predict", f"run_dir={finished_run}", f"input={images}", f"output={out}", f"export={fmt}"
    )
    assert result.returncode == 0, result.stderr
    contract = json.loads((out / "model.json").read_text())
    assert contract["format"] == fmt and (out / contract["file"]).is_file()
    if fmt == "torchscript":  # reload independently of genseg and compare with the checkpoint
        from genseg_cli.engine.restore import load_run

        run = load_run(finished_run, "cpu")
        x = torch.rand(1, 1, 64, 64) * 2 - 1
        reference = run.segmenter.float()(x.contiguous(memory_format=torch.channels_last))
        deployed = torch.jit.load(str(out / "model.ts"))(x)
        assert torch.allclose(reference, deployed, atol=1e-4)


@pytest.mark.parametrize("fmt", ["standard", "nnunet"])
def test_generate_writes_a_valid_dataset(finished_run: Path, tmp_path: Path, fmt: str):
    out = tmp_path / "Dataset901_SynJSRT"
    result = genseg("generate", f"run_dir={finished_run}", "n=5", f"out={out}", f"format={fmt}")
    assert result.returncode == 0, result.stderr
    if fmt == "standard":
        ids = sorted(p.stem for p in (out / "images").glob("*.png"))
        assert ids == sorted(p.stem for p in (out / "masks").glob("*.png")) and len(ids) == 5
        assert subprocess_check(["data", "check", "folder", "--root", str(out)]) == 0
        return
    # the rules nnU-Net v2's dataset integrity check applies to a raw dataset
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numTraining"] == 5 and meta["file_ending"] == ".png"
    assert meta["labels"] == {"background": 0, "target": 1} and meta["channel_names"] == {"0": "L"}
    labels = sorted((out / "labelsTr").glob("*.png"))
    assert len(labels) == 5
    for label in labels:
        image = out / "imagesTr" / f"{label.stem}_0000.png"
        assert image.is_file()
        values = np.asarray(Image.open(label))
        assert set(np.unique(values)) <= {0, 1}
        assert values.shape == np.asarray(Image.open(image)).shape[:2]


def subprocess_check(args: list[str]) -> int:
    return genseg(*args).returncode


def test_generate_needs_a_generator(data_dir, tmp_path: Path):
    out = tmp_path / "o"
    result = genseg("train", "profile=debug", env={"GENSEG_OUTPUT_DIR": str(out)})
    assert result.returncode == 0
    (run_dir,) = (out / "runs" / "jsrt" / "baseline").iterdir()
    result = genseg("generate", f"run_dir={run_dir}", "n=2", f"out={tmp_path / 'syn'}")
    assert result.returncode == 2 and "has no generator" in result.stderr


def test_generate_refuses_a_non_empty_output(finished_run: Path, tmp_path: Path):
    (tmp_path / "keep.txt").write_text("mine")
    result = genseg("generate", f"run_dir={finished_run}", "n=2", f"out={tmp_path}")
    assert result.returncode == 2 and "not empty" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
