"""Every method on real hippocampus volumes (3D, three labels): the shared method contract
(tests/methods/tester.py) plus the per-class scores and one-hot batches only 3D has."""

import json

import pandas as pd
import pytest

from tests.methods.tester import MethodTester

FAST_3D = [
    "profile=debug",
    "trainer.precision=fp32",
    "method.pretrain.steps=2",
    "evaluation.tstr_steps=2",
    "method.pretrain.cache_dir=null",
    "generator.model.base_width=4",
    "generator.discriminator.base_width=4",
]


class TestHippocampus(MethodTester):
    dataset, n_labeled, overrides = "hippocampus", 10, FAST_3D

    def test_3d_batches_carry_one_hot_volumes(self, data, tmp_path):
        _, batches = self.prepared("genseg", data, tmp_path)
        batch = batches[0]
        assert batch["image"].shape == (2, 1, 32, 48, 32)
        assert batch["mask"].shape == batch["new_mask"].shape == (2, 3, 32, 48, 32)

    def check_scores(self, metrics: dict, run_dir) -> None:
        test = metrics["test"]
        assert test["n"] == 52 and metrics["ood"] == {}
        for key in ("dice_anterior_mean", "dice_posterior_mean", "iou_mean", "hd95_mean"):
            assert key in test
        assert test["dice_mean"] == pytest.approx(
            (test["dice_anterior_mean"] + test["dice_posterior_mean"]) / 2
        )
        per_image = pd.read_csv(run_dir / "per_image.csv")
        assert {"dice_anterior", "hd95_posterior", "dice"} <= set(per_image.columns)
        on_disk = json.loads((run_dir / "metrics.json").read_text())
        assert on_disk["run"]["image_size"] == [32, 48, 32]
