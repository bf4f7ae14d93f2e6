"""A shared tester for the stages after training (smp-style, like tests/methods/tester.py): every
subclass names one dataset, trains one real `separate` run per class, and gets the same checks of
evaluate, predict (+ export) and generate, so 2D images and 3D volumes are held to one contract.

A subclass sets the data attributes below and implements the hooks (what differs by
dimensionality): `write_user_folder`, `write_inputs`, `check_prediction`, `check_pair` and
`check_standard_dataset`.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.stages.test_cli import genseg


def same_scores(a: dict, b: dict) -> bool:
    """Equal summaries, where an undefined (NaN) mean equals another NaN."""
    nan = {k for k, v in a.items() if isinstance(v, float) and math.isnan(v)}
    return a.keys() == b.keys() and all(a[k] == b[k] or (k in nan and math.isnan(b[k])) for k in a)


class StageTester:
    dataset: str  # registry name; the run lands in runs/<dataset>/separate
    required: str  # path under the datasets folder that must exist, else the class is skipped
    train_overrides: list[str]  # a fast `separate` run
    score_columns: tuple[str, ...]  # per-image columns, each also summarised as <column>_mean
    undefined_scores: bool  # whether a summary may hold NaN means (3D HD95 of empty classes)
    ood_sets: set[str]  # what `genseg evaluate` scores besides the test split
    input_shape: tuple[int, ...]  # one network input, C x spatial (model.json's input_shape)
    classes: list[str] | None  # model.json's classes (None: a binary 2D segmenter has none)
    out_channels: int  # logit channels of the segmenter
    file_ending: str  # of generated pairs
    nnunet_labels: dict[str, int]
    nnunet_channels: dict[str, str]
    n_generated: int
    synthetic_name: str  # an nnU-Net style folder name for generated datasets

    # ----- class-scoped fixtures: the data and one finished run per class -------------------
    @pytest.fixture(scope="class")
    def dataset_dir(self) -> Path:
        from tests.conftest import DATA_DIR

        if not (DATA_DIR / self.required).is_dir():
            pytest.skip(f"real dataset {self.required} not found in {DATA_DIR}")
        return DATA_DIR / self.dataset

    @pytest.fixture(scope="class")
    def finished_run(self, dataset_dir: Path, tmp_path_factory) -> Path:
        out = tmp_path_factory.mktemp("outputs")
        result = genseg("train", *self.train_overrides, env={"GENSEG_OUTPUT_DIR": str(out)})
        assert result.returncode == 0, result.stderr
        (run_dir,) = (out / "runs" / self.dataset / "separate").iterdir()
        return run_dir

    # ----- hooks -----------------------------------------------------------------------------
    def write_user_folder(self, root: Path, folder: Path) -> None:
        """Two labelled pairs in the layout `evaluate datasets=[folder]` reads."""
        raise NotImplementedError

    def write_inputs(self, run_dir: Path, root: Path, folder: Path) -> None:
        """A folder of inputs for `genseg predict` (`folder` does not exist yet)."""
        raise NotImplementedError

    def check_prediction(self, source: Path, written: Path, run_dir: Path, root: Path) -> None:
        """`written` is predict's output for the input file `source` (same name)."""
        raise NotImplementedError

    def check_pair(self, image: Path, label: Path) -> None:
        """One generated nnU-Net pair (imagesTr/<case>_0000, labelsTr/<case>) is valid."""
        raise NotImplementedError

    def check_standard_dataset(self, out: Path, n: int) -> None:
        """`generate format=standard` wrote a valid dataset of `n` pairs into `out`."""
        raise NotImplementedError

    def reference_input(self, x: torch.Tensor) -> torch.Tensor:
        """`x` as the checkpoint's segmenter is fed it when compared with an export."""
        return x

    # ----- the contract ----------------------------------------------------------------------
    def check_summary(self, scores: dict) -> None:
        for column in self.score_columns:
            assert f"{column}_mean" in scores, column
        if not self.undefined_scores:
            assert not any(isinstance(v, float) and math.isnan(v) for v in scores.values())

    def test_evaluate_reproduces_the_training_scores(self, finished_run: Path):
        result = genseg("evaluate", f"run_dir={finished_run}")
        assert result.returncode == 0, result.stderr
        # each call writes a folder of its own, and says where
        written = max((finished_run / "evaluate").iterdir())
        assert f"wrote {written / 'metrics.json'}" in " ".join(result.stdout.split())
        trained = json.loads((finished_run / "metrics.json").read_text())
        again = json.loads((written / "metrics.json").read_text())
        assert same_scores(again["test"], trained["test"])
        self.check_summary(again["test"])
        assert again["test"]["n"] == len(
            json.loads((finished_run / "splits.json").read_text())["test"]
        )
        assert set(again["ood"]) == self.ood_sets
        per_image = pd.read_csv(written / "per_image.csv")
        assert set(self.score_columns) <= set(per_image.columns)

    def test_evaluate_on_a_user_folder(self, finished_run: Path, dataset_dir: Path, tmp_path):
        folder = tmp_path / "mine"
        self.write_user_folder(dataset_dir, folder)
        out = tmp_path / "eval"
        result = genseg("evaluate", f"run_dir={finished_run}", f"datasets=[{folder}]", f"out={out}")
        assert result.returncode == 0, result.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["test"] is None and metrics["ood"]["mine"]["n"] == 2
        self.check_summary(metrics["ood"]["mine"])

    def test_stages_refuse_unfinished_runs(self, finished_run: Path, tmp_path: Path):
        broken = tmp_path / "broken"
        shutil.copytree(finished_run, broken)
        (broken / "status.json").write_text(json.dumps({"status": "failed", "reason": "x"}))
        result = genseg("evaluate", f"run_dir={broken}")
        assert result.returncode == 2 and "not finished (status: failed)" in result.stderr

    def test_unknown_argument_is_named(self, finished_run: Path):
        result = genseg("evaluate", f"run_dir={finished_run}", f"dataset={self.dataset}")
        assert result.returncode == 2 and "unknown argument 'dataset'" in result.stderr

    def test_predict_writes_outputs_at_original_size(
        self, finished_run: Path, dataset_dir: Path, tmp_path: Path
    ):
        images, out = tmp_path / "new", tmp_path / "predicted"
        self.write_inputs(finished_run, dataset_dir, images)
        result = genseg("predict", f"run_dir={finished_run}", f"input={images}", f"output={out}")
        assert result.returncode == 0, result.stderr
        sources = sorted(images.iterdir())
        assert sorted(p.name for p in out.iterdir()) == [p.name for p in sources]
        for source in sources:
            self.check_prediction(source, out / source.name, finished_run, dataset_dir)

    @pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
    def test_export_matches_pytorch(
        self, finished_run: Path, dataset_dir: Path, tmp_path: Path, fmt: str
    ):
        if fmt == "onnx":  # the optional [export] extra
            pytest.importorskip("onnxruntime")
        images, out = tmp_path / "new", tmp_path / "out"
        self.write_inputs(finished_run, dataset_dir, images)
        result = genseg(
            "predict",
            f"run_dir={finished_run}",
            f"input={images}",
            f"output={out}",
            f"export={fmt}",
        )
        assert result.returncode == 0, result.stderr
        contract = json.loads((out / "model.json").read_text())
        assert contract["format"] == fmt and (out / contract["file"]).is_file()
        assert contract["input_shape"] == ["N", *self.input_shape]
        assert contract.get("classes") == self.classes

        from genseg_cli.engine.restore import load_run

        # reload independently of genseg's export code and compare with the checkpoint
        x = torch.rand(1, *self.input_shape) * 2 - 1
        with torch.no_grad():
            segmenter = load_run(finished_run, "cpu").segmenter.float()
            reference = segmenter(self.reference_input(x)).numpy()
        if fmt == "torchscript":
            deployed = torch.jit.load(str(out / "model.ts"))(x).detach().numpy()
        else:
            import onnxruntime

            runtime = onnxruntime.InferenceSession(
                str(out / "model.onnx"), providers=["CPUExecutionProvider"]
            )
            deployed = runtime.run(None, {"image": x.numpy()})[0]
        assert deployed.shape == (1, self.out_channels, *self.input_shape[1:])
        assert np.allclose(reference, deployed, atol=1e-4)

    @pytest.mark.parametrize("fmt", ["standard", "nnunet"])
    def test_generate_writes_a_valid_dataset(self, finished_run: Path, tmp_path: Path, fmt: str):
        out, n = tmp_path / self.synthetic_name, self.n_generated
        result = genseg(
            "generate", f"run_dir={finished_run}", f"n={n}", f"out={out}", f"format={fmt}"
        )
        assert result.returncode == 0, result.stderr
        if fmt == "standard":
            self.check_standard_dataset(out, n)
            return
        # the rules nnU-Net v2's dataset integrity check applies to a raw dataset
        meta = json.loads((out / "dataset.json").read_text())
        assert meta["numTraining"] == n and meta["file_ending"] == self.file_ending
        assert meta["labels"] == self.nnunet_labels
        assert meta["channel_names"] == self.nnunet_channels
        labels = sorted((out / "labelsTr").glob(f"*{self.file_ending}"))
        assert len(labels) == n
        for label in labels:
            case = label.name.removesuffix(self.file_ending)
            image = out / "imagesTr" / f"{case}_0000{self.file_ending}"
            assert image.is_file()
            self.check_pair(image, label)

    def test_generate_refuses_a_non_empty_output(self, finished_run: Path, tmp_path: Path):
        (tmp_path / "keep.txt").write_text("mine")
        result = genseg("generate", f"run_dir={finished_run}", "n=2", f"out={tmp_path}")
        assert result.returncode == 2 and "not empty" in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
        assert (tmp_path / "keep.txt").read_text() == "mine"
