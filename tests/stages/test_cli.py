"""The `genseg` command as a user runs it (subprocesses of the installed console script)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_pair

GENSEG = str(Path(sys.executable).parent / "genseg")


def genseg(
    *args: str, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [GENSEG, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
    )


def test_a_mistake_on_the_command_line_is_one_line_and_nothing_else():
    # the real process, with its imports: a library's warning would come before the line
    out = genseg("train", "dataset=jsrt", "n_labeled=9", "trainer.steps=-3")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: trainer.steps=-3 must be at least 1; e.g. trainer.steps=1500"
    ], out.stderr


def test_help_lists_every_stage():
    out = genseg("--help")
    assert out.returncode == 0
    for stage in ("train", "generate", "evaluate", "predict", "report", "runs", "data"):
        assert f"  {stage} " in out.stdout


def test_info_defaults_prints_each_line_once():
    out = genseg("train", "--info", "defaults")
    assert out.returncode == 0, out.stderr
    assert (out.stdout + out.stderr).count("Defaults List") == 1


def test_train_help_shows_config_groups():
    out = genseg("train", "--help")
    assert out.returncode == 0
    for group in ("dataset:", "backbone:", "method:", "profile:", "optim:"):
        assert group in out.stdout
    assert "jsrt" in out.stdout and "deeplabv3" in out.stdout


def test_unknown_stage():
    out = genseg("fly")
    assert out.returncode == 2 and "unknown stage 'fly'" in out.stderr


@pytest.mark.parametrize("stage", ["generate", "evaluate", "predict", "report"])
def test_run_stages_name_their_missing_argument(stage):
    out = genseg(stage)
    assert out.returncode == 2 and "needs" in out.stderr


def test_data_list_shows_present_and_absent(data_dir: Path):
    out = genseg("data", "list", env={"GENSEG_DATA_DIR": str(data_dir), "COLUMNS": "80"})
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    rows = {
        line.split()[0]: line for line in lines if line.strip() and line.split()[0].isidentifier()
    }
    assert "yes" in rows["jsrt"] and "247" in rows["jsrt"] and "9,35,175" in rows["jsrt"]
    assert "no" in rows["isic"] and "no" in rows["liver"]
    assert "official" in rows["kvasir"] and "cvc_clinicdb" in rows
    assert all(len(line) <= 80 and "…" not in line for line in lines)  # readable at 80 columns
    assert any(line.startswith("folder:") for line in lines)  # the generic dataset is named


def test_data_check_valid(data_dir: Path):
    out = genseg("data", "check", "jsrt", "--data-dir", str(data_dir))
    assert out.returncode == 0 and "jsrt is valid" in out.stdout and "247" in out.stdout


def test_data_check_broken_folder_names_ids(folder_dataset: Path):
    (folder_dataset / "masks" / "case04.png").unlink()
    out = genseg("data", "check", "folder", "--root", str(folder_dataset))
    assert out.returncode == 1
    assert "images without a mask: case04" in out.stdout


def test_data_prepare_then_check(tmp_path: Path):
    src = tmp_path / "icfluid_download"
    for i in range(3):
        write_pair(src, f"oct{i}")
    (src / "images").rename(src / "image")
    (src / "masks").rename(src / "mask")
    out = genseg("data", "prepare", "icfluid", "--src", str(src), "--data-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert genseg("data", "check", "icfluid", "--data-dir", str(tmp_path)).returncode == 0


def test_train_unknown_choice_lists_options(tmp_path: Path):
    out = genseg("train", "backbone=resnet9000", env={"GENSEG_OUTPUT_DIR": str(tmp_path)})
    assert out.returncode == 2
    assert "there is no backbone 'resnet9000'" in out.stderr and "deeplabv3" in out.stderr


def test_train_bad_budget_is_one_clear_line(data_dir: Path, tmp_path: Path):
    out = genseg("train", "profile=debug", "n_labeled=1", env={"GENSEG_OUTPUT_DIR": str(tmp_path)})
    assert out.returncode == 2
    assert "n_labeled=1 is too small" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert not any(tmp_path.iterdir())  # a failed pre-flight leaves no run folder


def test_train_missing_data_dir(tmp_path: Path):
    out = genseg(
        "train",
        "profile=debug",
        env={"GENSEG_DATA_DIR": str(tmp_path / "nowhere"), "GENSEG_OUTPUT_DIR": str(tmp_path)},
    )
    assert out.returncode == 2
    assert f"data directory {tmp_path / 'nowhere'} does not exist" in out.stdout + out.stderr


def test_train_single_run_prints_table(data_dir: Path, tmp_path: Path):
    out = genseg(
        "train", "profile=debug", "evaluation.ood=true", env={"GENSEG_OUTPUT_DIR": str(tmp_path)}
    )
    assert out.returncode == 0, out.stderr
    assert "test (in-domain)" in out.stdout and "nlm_sz (OOD)" in out.stdout
    (run_dir,) = (tmp_path / "runs" / "jsrt" / "baseline").iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "train.log").is_file()
    # the results table goes into train.log too, and only once onto the terminal
    assert "nlm_sz (OOD)" in (run_dir / "train.log").read_text()
    assert out.stdout.count("test (in-domain)") == 1


def test_multirun_sweep_gives_one_directory_per_run(data_dir: Path, tmp_path: Path):
    out = genseg(
        "train",
        "-m",
        "profile=debug",
        "seed=0,1",
        "n_labeled=3",
        env={"GENSEG_OUTPUT_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    runs = sorted(p.parent.name for p in tmp_path.glob("multiruns/*/*/metrics.json"))
    assert runs == ["jsrt_unet_baseline_n3_s0", "jsrt_unet_baseline_n3_s1"]


def test_a_sweep_over_a_key_the_folder_name_leaves_out_keeps_every_run(
    data_dir: Path, tmp_path: Path
):
    sweep = tmp_path / "sweep"
    args = ["train", "-m", "profile=debug", "n_labeled=3", "trainer.steps=2"]
    env = {"GENSEG_OUTPUT_DIR": str(tmp_path)}
    out = genseg(*args, "optim.optimizer.lr=0.001,0.002", f"hydra.sweep.dir={sweep}", env=env)
    assert out.returncode == 0, out.stderr
    runs = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 2 and runs[0] == "jsrt_unet_baseline_n3_s0", runs
    assert runs[1].startswith("jsrt_unet_baseline_n3_s0_")  # its own folder, not the first's
    # the same config again still meets the finished run and refuses to train over it
    again = genseg(*args, "optim.optimizer.lr=0.001", f"hydra.sweep.dir={sweep}", env=env)
    assert "holds a finished run" in again.stdout + again.stderr
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == runs
    # and the refused job leaves the finished run's status as it was
    status = json.loads((sweep / runs[0] / "status.json").read_text())
    assert status["status"] == "done", status


def test_the_paper_profile_on_cuda_never_overrides_a_chosen_profile_or_experiment(monkeypatch):
    import torch

    from genseg_cli.cli import with_default_profile

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert with_default_profile(["dataset=jsrt"]) == ["dataset=jsrt", "profile=paper"]
    assert with_default_profile(["experiment=ph2_cpu"]) == ["experiment=ph2_cpu"]
    assert with_default_profile(["profile=cpu"]) == ["profile=cpu"]
    from genseg_cli.core.config import compose

    assert compose("train", ["experiment=ph2_cpu"]).data.image_size == 128


def test_the_output_probe_leaves_another_runs_probe_alone(tmp_path: Path):
    """Runs started at once share the output folder: one run's write check must not delete the
    probe of the other (a shared probe name let a grid's second stream fail with 'No such file')."""
    from genseg_cli.stages.train import check_output_dir

    other = tmp_path / ".genseg_write_test"
    other.write_text("")
    check_output_dir([f"paths.output_dir={tmp_path}"])
    assert other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".genseg_write_test"]
