"""Self-training with a trained teacher (`ssl=self_training`): pseudo labels are the teacher
run's own predictions, the teacher never moves, a run with it resumes exactly, and pre-flight
refuses a teacher of another dataset or one that saw a test image."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.engine.checkpoint import TrainingInterrupted
from genseg_cli.engine.loop import build_method, run_training
from genseg_cli.engine.restore import load_run
from genseg_cli.semisup.base import hard_labels, probabilities
from genseg_cli.semisup.fixmatch import FixMatch
from tests.engine.test_reliability import cfg_for, without_timing
from tests.stages.test_cli import genseg

CPU = resolve_runtime("cpu", "fp32", False)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real datasets not found")
    folder = tmp_path_factory.mktemp("teacher") / "run"
    done = genseg(
        "train", "profile=debug", "trainer.precision=fp32", "trainer.steps=6",
        "trainer.progress=false", f"paths.data_dir={DATA_DIR}", f"hydra.run.dir={folder}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder


def student(teacher, *more: str):
    return cfg_for(
        "ssl=self_training", f"ssl.teacher_run={teacher}", "n_unlabeled=6", "ssl.cutmix=0", *more
    )


def test_pseudo_labels_are_the_teacher_runs_and_the_teacher_stays_frozen(teacher_run, data_dir):
    method = build_method(student(teacher_run), CPU)
    teacher = method.unlabeled.trained_teacher
    before = [p.detach().clone() for p in teacher.parameters()]
    torch.manual_seed(0)
    images, masks = torch.rand(2, 1, 64, 64) * 2 - 1, (torch.rand(2, 1, 64, 64) > 0.5).float()
    unlabeled = torch.rand(2, 1, 64, 64) * 2 - 1
    _, context = method.unlabeled.prepare(method.segmenter, unlabeled, images, masks)
    with torch.no_grad():
        expected, _ = hard_labels(probabilities(load_run(teacher_run).segmenter(unlabeled)))
    assert torch.equal(context["weak_labels"], expected)
    with torch.no_grad():
        own, _ = hard_labels(probabilities(method.segmenter.eval()(unlabeled)))
    assert not torch.equal(own, expected)  # the student's own labels would differ
    for _ in range(3):
        method.segmentation_update(images, masks, unlabeled=unlabeled)
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))


def test_a_self_training_run_resumes_exactly(teacher_run, data_dir, tmp_path):
    whole = run_training(student(teacher_run), tmp_path / "whole")
    assert whole["run"]["method"] == "baseline+self_training"
    with pytest.raises(TrainingInterrupted):
        run_training(student(teacher_run, "trainer.stop_after=5"), tmp_path / "split")
    resumed = run_training(student(teacher_run, f"resume={tmp_path / 'split'}"), tmp_path / "split")
    assert json.dumps(without_timing(resumed), sort_keys=True) == json.dumps(
        without_timing(whole), sort_keys=True
    )


def test_a_teacher_of_another_dataset_or_one_that_saw_a_test_image_is_refused(
    teacher_run, data_dir, tmp_path
):
    with pytest.raises(GensegError, match="is a run on 'jsrt'.*same dataset"):
        run_training(student(teacher_run, "dataset=ph2", "n_labeled=10"), tmp_path / "other")
    leaky = tmp_path / "leaky_teacher"
    shutil.copytree(teacher_run, leaky)
    splits = json.loads((leaky / "splits.json").read_text())
    splits["train"].append(splits["test"][0])
    (leaky / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(GensegError, match="trained on 1 of this run's test images"):
        run_training(student(leaky), tmp_path / "leak")


def test_run_pseudo_labels_and_a_teacher_come_together():
    with pytest.raises(ValueError, match="ssl.teacher_run"):
        FixMatch(weight=1.0, ramp_up=0.0, total_steps=10, pseudo_labels="run")
    with pytest.raises(ValueError, match="ssl.pseudo_labels=run"):
        FixMatch(weight=1.0, ramp_up=0.0, total_steps=10, teacher=torch.nn.Conv2d(1, 1, 1))


def test_the_teachers_pseudo_labels_change_the_segmenters_update(teacher_run, data_dir):
    """Twin updates, one with the self-training term multiplied by 0: the segmenters differ."""
    from genseg_cli.data.batches import whole_set
    from genseg_cli.data.registry import dataset_spec
    from genseg_cli.data.run_data import load_run_data
    from genseg_cli.data.spec import DataSpec
    from tests.semisup.test_objectives import (
        assert_the_term_moves_the_segmenter,
        segmenters_after_twin_updates,
    )

    cfg = student(teacher_run, "ssl.threshold=0")
    data = load_run_data(dataset_spec("jsrt"), data_dir, 9, 0, 0.2, with_ood=False)
    batch = whole_set(data.train[:4], DataSpec.from_config(cfg))
    assert_the_term_moves_the_segmenter(segmenters_after_twin_updates(cfg, batch))
