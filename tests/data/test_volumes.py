"""The 3D data path on the real MSD hippocampus volumes; broken files only where real data
cannot show them."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.errors import DataContractError, GensegError
from genseg_cli.data.augment import instantiate_pipeline
from genseg_cli.data.dataset import SampleDataset
from genseg_cli.data.registry import class_names, dataset_spec, mask_channels
from genseg_cli.data.run_data import load_run_data
from genseg_cli.data.spec import DataSpec
from genseg_cli.data.volumes import (
    augment_labels,
    load_volumes,
    normalise_intensity,
    read_volume,
    resize_volume,
)

SHAPE = (32, 48, 32)


@pytest.fixture(scope="module")
def hippocampus(request) -> Path:
    from tests.conftest import DATA_DIR

    root = DATA_DIR / "hippocampus"
    if not (root / "imagesTr").is_dir():
        pytest.skip("real hippocampus volumes not found")
    return root


@pytest.fixture(scope="module")
def volumes(hippocampus):
    return load_volumes(hippocampus, ["hippocampus_001", "hippocampus_003"])


def test_registry_describes_the_labels():
    spec = dataset_spec("hippocampus")
    assert class_names(spec) == ["anterior", "posterior"] and mask_channels(spec) == 3
    assert class_names(dataset_spec("jsrt")) == ["foreground"]
    assert mask_channels(dataset_spec("jsrt")) == 1


def test_inconsistent_mask_channels_are_refused():
    spec = dataset_spec("hippocampus")
    spec.mask_channels = 1
    with pytest.raises(GensegError, match="mask_channels=3"):
        mask_channels(spec)


def test_volumes_read_with_their_labels_and_spacing(volumes):
    volume = volumes[0]
    assert volume.image.dtype == np.float32 and volume.image.ndim == 3
    assert volume.mask.shape == volume.image.shape
    assert set(np.unique(volume.mask)) == {0, 1, 2}
    assert volume.spacing == (1.0, 1.0, 1.0)


def test_intensities_are_mapped_to_the_generator_range(volumes):
    image = normalise_intensity(volumes[0].image)
    assert image.min() == -1.0 and image.max() == 1.0


def test_resizing_keeps_a_label_map(volumes):
    image, labels = resize_volume(volumes[0], SHAPE)
    assert image.shape == (1, *SHAPE) and labels.shape == SHAPE
    assert set(labels.unique().tolist()) == {0, 1, 2}


def test_dataset_items_are_one_hot_and_augmented_in_step(volumes):
    cfg = compose("train", ["dataset=hippocampus"])
    spec = DataSpec.from_config(cfg)
    assert spec.model_size == SHAPE and spec.mask_channels == 3
    transform = instantiate_pipeline(cfg.augment, 0, spec)
    mask_pipeline = instantiate_pipeline(cfg.mask_augment, 1, spec)
    plain = SampleDataset(volumes, spec)[0]
    dataset = SampleDataset(volumes, spec, transform, mask_pipeline, with_new_masks=True)
    item = dataset[0]
    assert item["image"].shape == (1, *SHAPE) and item["mask"].shape == (3, *SHAPE)
    for mask in (item["mask"], item["new_mask"]):
        assert torch.equal(mask.sum(0), torch.ones(SHAPE))  # exactly one label per voxel
    assert not torch.equal(item["image"], plain["image"])  # the transform did something
    assert not torch.equal(item["new_mask"], plain["mask"])
    assert isinstance(item["image"], torch.Tensor) and type(item["image"]) is torch.Tensor


def test_new_label_maps_keep_the_classes(volumes):
    cfg = compose("train", ["dataset=hippocampus"])
    pipeline = instantiate_pipeline(cfg.mask_augment, 0, DataSpec.from_config(cfg))
    labels = resize_volume(volumes[0], SHAPE)[1]
    moved = augment_labels(labels, pipeline)
    assert moved.shape == labels.shape and set(moved.unique().tolist()) <= {0, 1, 2}
    assert (moved > 0).sum() > 0.5 * (labels > 0).sum()  # the structure is moved, not lost


def test_run_data_uses_the_official_split(hippocampus):
    data = load_run_data(dataset_spec("hippocampus"), hippocampus.parent, 10, 0, 0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (8, 2, 52)
    assert not set(data.splits.test) & set(data.splits.train + data.splits.val)
    assert data.ood == {}


def write_volume(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)


def test_label_values_beyond_the_classes_are_named(tmp_path: Path):
    root = tmp_path / "hippocampus"
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[2:4, 2:4, 2:4] = 1
    for i in range(12):
        write_volume(root / "imagesTr" / f"hippocampus_{i:03d}.nii.gz", np.ones((8, 8, 8)))
        bad = labels.copy()
        if i == 5:
            bad[5, 5, 5] = 7
        write_volume(root / "labelsTr" / f"hippocampus_{i:03d}.nii.gz", bad)
    spec = dataset_spec("hippocampus")
    spec.split = {"pool": None, "test": None, "test_fraction": 0.25}
    with pytest.raises(DataContractError, match="values 7"):
        load_run_data(spec, tmp_path, 4, 0, 0.2)


def test_a_corrupt_volume_is_named(tmp_path: Path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"not a nifti file")
    with pytest.raises(DataContractError, match="broken.nii.gz"):
        read_volume(path)


def msd_folder(tmp_path: Path, labels: dict) -> Path:
    import json

    root = tmp_path / "hippocampus"
    label_map = np.zeros((8, 8, 8), np.uint8)
    label_map[2:4, 2:4, 2:4] = 1
    label_map[4:6, 4:6, 4:6] = 2
    for i in range(12):
        write_volume(root / "imagesTr" / f"hippocampus_{i:03d}.nii.gz", np.ones((8, 8, 8)))
        write_volume(root / "labelsTr" / f"hippocampus_{i:03d}.nii.gz", label_map)
    (root / "dataset.json").write_text(json.dumps({"name": "Hippocampus", "labels": labels}))
    return root


def local_spec():
    spec = dataset_spec("hippocampus")
    spec.split = {"pool": None, "test": None, "test_fraction": 0.25}
    return spec


def test_dataset_json_with_other_classes_is_refused(tmp_path: Path):
    msd_folder(tmp_path, {"0": "background", "1": "Hippocampus"})
    with pytest.raises(DataContractError, match="1 foreground labels.*anterior"):
        load_run_data(local_spec(), tmp_path, 4, 0, 0.2)


@pytest.mark.parametrize(
    "labels",
    [
        {"0": "background", "1": "Anterior", "2": "Posterior"},  # MSD
        {"background": 0, "anterior": 1, "posterior": 2},  # nnU-Net v2
    ],
)
def test_dataset_json_matching_the_registry_is_accepted(tmp_path: Path, labels: dict):
    msd_folder(tmp_path, labels)
    data = load_run_data(local_spec(), tmp_path, 4, 0, 0.2)
    assert len(data.train) + len(data.val) == 4
