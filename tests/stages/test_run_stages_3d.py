"""evaluate, predict (+ export) and generate on a real finished 3D run (MSD hippocampus)."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.stages.test_cli import genseg

nib = pytest.importorskip("nibabel")

VOLUME_SHAPE = (32, 48, 32)  # conf/dataset/hippocampus.yaml volume_shape
LABELS = {0, 1, 2}  # background, anterior, posterior
SEPARATE_3D = [
    "dataset=hippocampus",
    "profile=debug",
    "method=separate",
    "method.pretrain.steps=2",
    "method.pretrain.cache_dir=null",
    "trainer.precision=fp32",
    "trainer.steps=4",
    # the smallest 3D generator and discriminator: this run tests plumbing, not quality
    "generator.model.base_width=4",
    "generator.discriminator.base_width=4",
]


@pytest.fixture(scope="module")
def hippocampus() -> Path:
    from tests.conftest import DATA_DIR

    root = DATA_DIR / "hippocampus"
    if not (root / "imagesTr").is_dir():
        pytest.skip(f"hippocampus (MSD Task04) not found in {DATA_DIR}")
    return root


@pytest.fixture(scope="module")
def finished_run(hippocampus: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outputs")
    result = genseg("train", *SEPARATE_3D, env={"GENSEG_OUTPUT_DIR": str(out)})
    assert result.returncode == 0, result.stderr
    (run_dir,) = (out / "runs" / "hippocampus" / "separate").iterdir()
    return run_dir


def same_scores(a: dict, b: dict) -> bool:
    """Equal summaries, where an undefined (NaN) mean equals another NaN."""
    nan = {k for k, v in a.items() if isinstance(v, float) and math.isnan(v)}
    return a.keys() == b.keys() and all(a[k] == b[k] or (k in nan and math.isnan(b[k])) for k in a)


def test_evaluate_reproduces_the_training_scores(finished_run: Path):
    result = genseg("evaluate", f"run_dir={finished_run}")
    assert result.returncode == 0, result.stderr
    trained = json.loads((finished_run / "metrics.json").read_text())
    again = json.loads((finished_run / "evaluate" / "metrics.json").read_text())
    assert same_scores(again["test"], trained["test"])
    for key in ("dice", "iou", "hd95", "dice_anterior", "dice_posterior", "hd95_posterior"):
        assert f"{key}_mean" in again["test"]
    assert again["test"]["n"] == len(json.loads((finished_run / "splits.json").read_text())["test"])
    per_image = pd.read_csv(finished_run / "evaluate" / "per_image.csv")
    assert {"dice_anterior", "iou_posterior", "hd95_anterior"} <= set(per_image.columns)


def test_evaluate_on_a_user_folder_of_volumes(finished_run: Path, hippocampus: Path, tmp_path):
    folder = tmp_path / "mine"
    for sub in ("imagesTr", "labelsTr"):
        (folder / sub).mkdir(parents=True)
        for key in ("hippocampus_001", "hippocampus_003"):
            shutil.copy(hippocampus / sub / f"{key}.nii.gz", folder / sub)
    out = tmp_path / "eval"
    result = genseg("evaluate", f"run_dir={finished_run}", f"datasets=[{folder}]", f"out={out}")
    assert result.returncode == 0, result.stderr
    scores = json.loads((out / "metrics.json").read_text())["ood"]["mine"]
    assert scores["n"] == 2 and "dice_posterior_mean" in scores


def copy_volumes(hippocampus: Path, ids: list[str], folder: Path) -> Path:
    folder.mkdir()
    for key in ids:
        shutil.copy(hippocampus / "imagesTr" / f"{key}.nii.gz", folder)
    return folder


def test_predict_writes_label_maps_like_the_input(
    finished_run: Path, hippocampus: Path, tmp_path: Path
):
    test_ids = json.loads((finished_run / "splits.json").read_text())["test"][:2]
    images = copy_volumes(hippocampus, test_ids, tmp_path / "new")
    out = tmp_path / "labels"
    result = genseg("predict", f"run_dir={finished_run}", f"input={images}", f"output={out}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in images.iterdir())

    from genseg_cli.evaluation.metrics import class_scores

    trained = pd.read_csv(finished_run / "per_image.csv").set_index("id")
    for key in test_ids:
        source, written = nib.load(images / f"{key}.nii.gz"), nib.load(out / f"{key}.nii.gz")
        labels = np.asarray(written.dataobj)
        assert labels.dtype == np.uint8 and labels.shape == source.shape
        assert np.allclose(written.affine, source.affine)
        assert written.header.get_zooms() == source.header.get_zooms()
        assert set(np.unique(labels)) <= LABELS
        # the written map is the one evaluation scored (original resolution) during training
        truth = np.asarray(nib.load(hippocampus / "labelsTr" / f"{key}.nii.gz").dataobj)
        dice = class_scores(labels, truth, ["anterior", "posterior"])["dice"]
        assert dice == pytest.approx(trained.loc[key, "dice"], abs=1e-9)


def test_predict_needs_nifti_for_a_3d_run(finished_run: Path, tmp_path: Path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    (folder / "slice.png").write_bytes(b"not a volume")
    result = genseg("predict", f"run_dir={finished_run}", f"input={folder}", f"output={tmp_path}")
    assert result.returncode == 2
    assert "no NIfTI volumes" in result.stderr and str(folder) in result.stderr


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_pytorch(finished_run: Path, hippocampus: Path, tmp_path: Path, fmt: str):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    images = copy_volumes(hippocampus, ["hippocampus_001"], tmp_path / "new")
    out = tmp_path / "out"
    result = genseg(
        "predict", f"run_dir={finished_run}", f"input={images}", f"output={out}", f"export={fmt}"
    )
    assert result.returncode == 0, result.stderr
    contract = json.loads((out / "model.json").read_text())
    assert contract["format"] == fmt and (out / contract["file"]).is_file()
    assert contract["input_shape"] == ["N", 1, *VOLUME_SHAPE]
    assert contract["classes"] == ["background", "anterior", "posterior"]

    from genseg_cli.engine.restore import load_run

    # reload independently of genseg's export code and compare with the checkpoint
    x = torch.rand(1, 1, *VOLUME_SHAPE) * 2 - 1
    with torch.no_grad():
        reference = load_run(finished_run, "cpu").segmenter.float()(x).numpy()
    if fmt == "torchscript":
        deployed = torch.jit.load(str(out / "model.ts"))(x).detach().numpy()
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(
            str(out / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        deployed = session.run(None, {"image": x.numpy()})[0]
    assert deployed.shape == (1, 3, *VOLUME_SHAPE)
    assert np.allclose(reference, deployed, atol=1e-4)


def check_pair(image_path: Path, label_path: Path) -> np.ndarray:
    """A synthetic pair's image (float32 in [-1, 1]) and label map agree; returns the labels."""
    image, labels = nib.load(image_path), nib.load(label_path)
    pixels, values = np.asarray(image.dataobj), np.asarray(labels.dataobj)
    assert pixels.shape == values.shape == VOLUME_SHAPE
    assert pixels.dtype == np.float32 and -1 <= pixels.min() <= pixels.max() <= 1
    assert values.dtype == np.uint8 and set(np.unique(values)) <= LABELS
    return values


def test_generate_writes_an_msd_dataset(finished_run: Path, tmp_path: Path):
    out = tmp_path / "syn"
    result = genseg("generate", f"run_dir={finished_run}", "n=3", f"out={out}")
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"0": "background", "1": "anterior", "2": "posterior"}
    assert meta["numTraining"] == 3 and len(meta["training"]) == 3
    labels = []
    for entry in meta["training"]:
        labels.append(check_pair(out / entry["image"], out / entry["label"]))
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [
        f"syn_{i:05d}.nii.gz" for i in range(3)
    ]
    # new masks are moved real masks: the hippocampus survives the augmentation
    assert all({1, 2} <= set(np.unique(v)) for v in labels)


def test_generate_writes_an_nnunet_dataset(finished_run: Path, tmp_path: Path):
    out = tmp_path / "Dataset902_SynHippocampus"
    result = genseg("generate", f"run_dir={finished_run}", "n=2", f"out={out}", "format=nnunet")
    assert result.returncode == 0, result.stderr
    # the rules nnU-Net v2's dataset integrity check applies to a raw dataset
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
    assert meta["labels"] == {"background": 0, "anterior": 1, "posterior": 2}
    assert list(meta["channel_names"]) == ["0"]
    labels = sorted((out / "labelsTr").glob("*.nii.gz"))
    assert len(labels) == 2
    for label in labels:
        case = label.name.removesuffix(".nii.gz")
        check_pair(out / "imagesTr" / f"{case}_0000.nii.gz", label)


def test_generate_refuses_a_non_empty_output(finished_run: Path, tmp_path: Path):
    (tmp_path / "keep.txt").write_text("mine")
    result = genseg("generate", f"run_dir={finished_run}", "n=2", f"out={tmp_path}")
    assert result.returncode == 2 and "not empty" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
