"""evaluate, predict (+ export) and generate on a real finished 3D run (MSD hippocampus): the
shared stage contract (tests/stages/tester.py) plus what only 3D runs have (NIfTI inputs only)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.stages.test_cli import genseg
from tests.stages.tester import StageTester

nib = pytest.importorskip("nibabel")

VOLUME_SHAPE = (32, 48, 32)  # conf/dataset/hippocampus.yaml volume_shape
CLASSES = ["anterior", "posterior"]
LABELS = {0, 1, 2}  # background, anterior, posterior
SCORES = tuple(
    f"{m}{c}" for m in ("dice", "iou", "hd95") for c in ("", *(f"_{c}" for c in CLASSES))
)
SEPARATE_3D = [
    "dataset=hippocampus",
    "profile=debug",
    "method=separate",
    "method.pretrain.steps=2",
    "evaluation.tstr_steps=2",
    "method.pretrain.cache_dir=null",
    "trainer.precision=fp32",
    "trainer.steps=4",
    # the smallest 3D generator and discriminator: this run tests plumbing, not quality
    "generator.model.base_width=4",
    "generator.discriminator.base_width=4",
]


def copy_volumes(hippocampus: Path, ids: list[str], folder: Path) -> Path:
    folder.mkdir()
    for key in ids:
        shutil.copy(hippocampus / "imagesTr" / f"{key}.nii.gz", folder)
    return folder


class TestHippocampusStages(StageTester):
    dataset, required, train_overrides = "hippocampus", "hippocampus/imagesTr", SEPARATE_3D
    # undefined: an HD95 mean is NaN where a class is empty in every case
    score_columns, undefined_scores = SCORES, True
    ood_sets: set[str] = set()
    input_shape, classes, out_channels = (1, *VOLUME_SHAPE), ["background", *CLASSES], 3
    file_ending = ".nii.gz"
    nnunet_labels = {"background": 0, "anterior": 1, "posterior": 2}
    nnunet_channels = {"0": "synthetic"}  # not "CT": no HU scale
    n_generated, synthetic_name = 3, "Dataset902_SynHippocampus"

    def write_user_folder(self, root: Path, folder: Path) -> None:
        for sub in ("imagesTr", "labelsTr"):
            (folder / sub).mkdir(parents=True)
            for key in ("hippocampus_001", "hippocampus_003"):
                shutil.copy(root / sub / f"{key}.nii.gz", folder / sub)

    def write_inputs(self, run_dir: Path, root: Path, folder: Path) -> None:
        """Two test volumes: their predictions were scored during training."""
        test_ids = json.loads((run_dir / "splits.json").read_text())["test"][:2]
        copy_volumes(root, test_ids, folder)

    def check_prediction(self, source: Path, written: Path, run_dir: Path, root: Path) -> None:
        """A uint8 label map with the volume's shape, affine and voxel size."""
        from genseg_cli.evaluation.metrics import class_scores

        volume, prediction = nib.load(source), nib.load(written)
        labels = np.asarray(prediction.dataobj)
        assert labels.dtype == np.uint8 and labels.shape == volume.shape
        assert np.allclose(prediction.affine, volume.affine)
        assert prediction.header.get_zooms() == volume.header.get_zooms()
        assert set(np.unique(labels)) <= LABELS
        # the written map is the one evaluation scored (original resolution) during training
        trained = pd.read_csv(run_dir / "per_image.csv").set_index("id")
        truth = np.asarray(nib.load(root / "labelsTr" / source.name).dataobj)
        dice = class_scores(labels, truth, CLASSES)["dice"]
        key = source.name.removesuffix(".nii.gz")
        assert dice == pytest.approx(trained.loc[key, "dice"], abs=1e-9)

    def check_pair(self, image: Path, label: Path) -> None:
        self.pair_labels(image, label)

    @staticmethod
    def pair_labels(image_path: Path, label_path: Path) -> np.ndarray:
        """A synthetic pair's image (float32 in [-1, 1]) and label map agree; returns the
        labels."""
        image, labels = nib.load(image_path), nib.load(label_path)
        pixels, values = np.asarray(image.dataobj), np.asarray(labels.dataobj)
        assert pixels.shape == values.shape == VOLUME_SHAPE
        assert pixels.dtype == np.float32 and -1 <= pixels.min() <= pixels.max() <= 1
        assert values.dtype == np.uint8 and set(np.unique(values)) <= LABELS
        return values

    def check_standard_dataset(self, out: Path, n: int) -> None:
        """The Medical Segmentation Decathlon layout (3D's standard format)."""
        meta = json.loads((out / "dataset.json").read_text())
        assert meta["labels"] == {"0": "background", "1": "anterior", "2": "posterior"}
        assert meta["numTraining"] == n and len(meta["training"]) == n
        labels = [self.pair_labels(out / e["image"], out / e["label"]) for e in meta["training"]]
        assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [
            f"syn_{i:05d}.nii.gz" for i in range(n)
        ]
        # new masks are moved real masks: the hippocampus survives the augmentation
        assert all({1, 2} <= set(np.unique(v)) for v in labels)

    # ----- 3D only ---------------------------------------------------------------------------
    def test_predict_needs_nifti_for_a_3d_run(self, finished_run: Path, tmp_path: Path):
        folder = tmp_path / "pngs"
        folder.mkdir()
        (folder / "slice.png").write_bytes(b"not a volume")
        result = genseg(
            "predict", f"run_dir={finished_run}", f"input={folder}", f"output={tmp_path / 'out'}"
        )
        assert result.returncode == 2
        assert "no NIfTI volumes" in result.stderr and str(folder) in result.stderr
