"""The data spec resolved from a run config, the codec it picks, and the batches built on it."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.data.batches import new_masks, training_batches, whole_set
from genseg_cli.data.codecs import codec_for
from genseg_cli.data.images import IMAGES, load_pairs
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.spec import DataSpec
from genseg_cli.data.volumes import VOLUMES


def test_2d_spec_from_config():
    cfg = compose("train", ["dataset=ph2", "data.image_size=96", "data.batch_size=3"])
    spec = DataSpec.from_config(cfg)
    assert (spec.name, spec.dims, spec.model_size, spec.spatial) == ("ph2", 2, 96, (96, 96))
    assert (spec.image_channels, spec.mask_channels, spec.class_names) == (3, 1, ("foreground",))
    assert spec.batch_size == 3 and spec.codec is IMAGES and spec.supports_channels_last


def test_3d_spec_from_config():
    spec = DataSpec.from_config(compose("train", ["dataset=hippocampus"]))
    assert (spec.dims, spec.model_size, spec.spatial) == (3, (32, 48, 32), (32, 48, 32))
    assert spec.mask_channels == 3 and spec.class_names == ("anterior", "posterior")
    assert spec.codec is VOLUMES and not spec.supports_channels_last
    assert spec.accepts(dataset_spec("liver")) and not spec.accepts(dataset_spec("jsrt"))


def test_unknown_dims_and_binary_volumes_are_refused():
    with pytest.raises(GensegError, match="dataset.dims=4"):
        codec_for(4)
    spec = DataSpec.from_config(compose("train", ["dataset=hippocampus"]))
    with pytest.raises(ValueError, match="mask_channels >= 2"):
        replace(spec, mask_channels=1)


@pytest.fixture
def spec() -> DataSpec:
    cfg = compose("train", ["dataset=folder", "dataset.channels=1", "data.image_size=32"])
    return replace(DataSpec.from_config(cfg), batch_size=2)


def test_training_batches_are_reproducible(folder_dataset: Path, spec: DataSpec):
    cfg = compose("train", [])
    pairs = load_pairs(folder_dataset, [f"case{i:02d}" for i in range(6)], 1)

    def draw(seed: int) -> list[dict]:
        loader = training_batches(pairs, spec, 3, seed, cfg.augment, cfg.mask_augment, True)
        return list(loader)

    first, again, other = draw(0), draw(0), draw(1)
    assert len(first) == 3 and first[0]["image"].shape == (2, 1, 32, 32)
    assert first[0]["new_mask"].shape == (2, 1, 32, 32)
    for a, b in zip(first, again, strict=True):
        assert a["id"] == b["id"] and torch.equal(a["image"], b["image"])
        assert torch.equal(a["new_mask"], b["new_mask"])
    assert any(not torch.equal(a["image"], b["image"]) for a, b in zip(first, other, strict=True))
    plain = whole_set(pairs, spec)
    assert plain["image"].shape == (6, 1, 32, 32) and plain["mask"].shape == (6, 1, 32, 32)


def test_new_masks_feed_the_generator_and_the_writer(folder_dataset: Path, spec: DataSpec):
    pairs = load_pairs(folder_dataset, ["case00", "case01"], 1)
    source = new_masks(pairs, spec, compose("train", []).mask_augment, seed=0)
    generator_input, mask = source()
    assert generator_input.shape == (1, 32, 32) and mask.shape == (32, 32)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert torch.equal(generator_input[0], torch.from_numpy(mask).float())


def test_2d_prediction_is_written_at_the_input_size(folder_dataset: Path, tmp_path: Path):
    spec = DataSpec("folder", 2, 32, 1, 1, ("foreground",), batch_size=2, num_workers=0)
    path = IMAGES.input_files(folder_dataset / "images")[0]
    sample = IMAGES.read_input(path, spec)
    assert sample.shape == (20, 24) and not sample.mask.any()
    prediction = np.zeros(sample.shape, bool)
    prediction[5:10, 5:10] = True
    IMAGES.write_prediction(prediction, sample, path, tmp_path)
    written = np.asarray(Image.open(tmp_path / f"{sample.id}.png"))
    assert written.shape == (20, 24) and set(np.unique(written)) == {0, 255}
