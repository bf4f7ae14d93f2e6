"""evaluate, predict (+ export) and generate on a real finished 2D run (JSRT): the shared stage
contract (tests/stages/tester.py) plus what only 2D runs have (a run without a generator)."""

import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.stages.test_cli import genseg
from tests.stages.tester import StageTester

SEPARATE = [
    "profile=debug",
    "method=separate",
    "method.pretrain.steps=2",
    "evaluation.tstr_steps=2",
    "method.pretrain.cache_dir=null",
    "trainer.precision=fp32",
]
USER_KEYS = ("MCUCXR_0001_0", "MCUCXR_0002_0")  # from nlm_mc
PREDICT_KEYS = ("MCUCXR_0001_0", "CHNCXR_0001_0")  # from nlm_mc and nlm_sz: two sizes


class TestJsrtStages(StageTester):
    dataset, required, train_overrides = "jsrt", "jsrt", SEPARATE
    score_columns, undefined_scores = ("dice", "iou"), False
    ood_sets = {"nlm_mc", "nlm_sz"}
    input_shape, classes, out_channels = (1, 64, 64), None, 1  # profile=debug: 64 px
    file_ending = ".png"
    nnunet_labels = {"background": 0, "target": 1}
    nnunet_channels = {"0": "L"}
    n_generated, synthetic_name = 5, "Dataset901_SynJSRT"

    def write_user_folder(self, root: Path, folder: Path) -> None:
        for sub in ("images", "masks"):
            (folder / sub).mkdir(parents=True)
            for key in USER_KEYS:
                shutil.copy(root.parent / "nlm_mc" / sub / f"{key}.png", folder / sub)

    def write_inputs(self, run_dir: Path, root: Path, folder: Path) -> None:
        folder.mkdir()
        for key in PREDICT_KEYS:
            source = "nlm_mc" if key.startswith("MC") else "nlm_sz"
            shutil.copy(root.parent / source / "images" / f"{key}.png", folder)

    def check_prediction(self, source: Path, written: Path, run_dir: Path, root: Path) -> None:
        """A 0/255 mask at the image's own size."""
        mask = np.asarray(Image.open(written))
        assert mask.shape == np.asarray(Image.open(source)).shape[:2]
        assert set(np.unique(mask)) <= {0, 255}

    def reference_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)  # as the 2D runtime feeds it

    def check_pair(self, image: Path, label: Path) -> None:
        values = np.asarray(Image.open(label))
        assert set(np.unique(values)) <= {0, 1}
        assert values.shape == np.asarray(Image.open(image)).shape[:2]

    def check_standard_dataset(self, out: Path, n: int) -> None:
        ids = sorted(p.stem for p in (out / "images").glob("*.png"))
        assert ids == sorted(p.stem for p in (out / "masks").glob("*.png")) and len(ids) == n
        assert genseg("data", "check", "folder", "--root", str(out)).returncode == 0

    # ----- 2D only ---------------------------------------------------------------------------
    def test_generate_needs_a_generator(self, data_dir, tmp_path: Path):
        out = tmp_path / "o"
        result = genseg("train", "profile=debug", env={"GENSEG_OUTPUT_DIR": str(out)})
        assert result.returncode == 0
        (run_dir,) = (out / "runs" / "jsrt" / "baseline").iterdir()
        result = genseg("generate", f"run_dir={run_dir}", "n=2", f"out={tmp_path / 'syn'}")
        assert result.returncode == 2 and "has no generator" in result.stderr
