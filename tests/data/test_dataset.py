from pathlib import Path

import albumentations as A
import torch

from genseg_cli.data.dataset import SampleDataset
from genseg_cli.data.images import load_pairs
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.run_data import load_run_data
from genseg_cli.data.spec import DataSpec


def image_spec(size: int, channels: int = 1) -> DataSpec:
    """A 2D binary spec at `size` x `size`."""
    return DataSpec("folder", 2, size, channels, 1, ("foreground",), batch_size=2, num_workers=0)


def test_pairs_become_normalised_tensors(folder_dataset: Path):
    pairs = load_pairs(folder_dataset, ["case00", "case01"], channels=1)
    assert pairs[0].image.shape == (20, 24, 1) and pairs[0].mask.dtype == bool
    item = SampleDataset(pairs, image_spec(32))[0]
    assert item["image"].shape == (1, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert item["image"].min() >= -1.0 and item["image"].max() <= 1.0
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}


def test_grey_images_can_feed_an_rgb_network(folder_dataset: Path):
    pairs = load_pairs(folder_dataset, ["case00"], channels=3)
    assert SampleDataset(pairs, image_spec(16, 3))[0]["image"].shape == (3, 16, 16)


def test_augmentation_moves_image_and_mask_together(folder_dataset: Path):
    pairs = load_pairs(folder_dataset, ["case00"], channels=1)
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    spec = image_spec(32)
    plain, flipped = SampleDataset(pairs, spec)[0], SampleDataset(pairs, spec, flip)[0]
    assert torch.equal(flipped["image"], plain["image"].flip(-1))
    assert torch.equal(flipped["mask"], plain["mask"].flip(-1))


def test_run_data_on_real_jsrt_with_ood(data_dir: Path):
    data = load_run_data(dataset_spec("jsrt"), data_dir, n_labeled=9, seed=0, val_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (7, 2, 62)
    assert {k: len(v) for k, v in data.ood.items()} == {"nlm_mc": 138, "nlm_sz": 566}
    assert data.train[0].image.shape[2] == 1


def test_run_data_official_split_kvasir(data_dir: Path):
    data = load_run_data(dataset_spec("kvasir"), data_dir, 40, 0, 0.2, with_ood=False)
    assert len(data.test) == 120 and len(data.train) == 32 and len(data.val) == 8
