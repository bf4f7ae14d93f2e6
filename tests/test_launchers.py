"""Sweep launchers compose with the parameters a cluster job needs (no Slurm exists here)."""

from genseg_cli.core.config import compose


def test_slurm_launcher_composes():
    cfg = compose(
        "train", ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True
    )
    launcher = cfg.hydra.launcher
    assert "submitit" in launcher._target_ and "Slurm" in launcher._target_
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1
    assert launcher.timeout_min == 240 and launcher.cpus_per_task == 8


def test_parallel_launcher_composes():
    cfg = compose("train", ["hydra/launcher=parallel"], return_hydra_config=True)
    assert "joblib" in cfg.hydra.launcher._target_.lower() and cfg.hydra.launcher.n_jobs == 2


def test_parallel_launcher_runs_a_sweep(data_dir, tmp_path):
    import json

    from tests.stages.test_cli import genseg

    result = genseg(
        "train",
        "-m",
        "hydra/launcher=parallel",
        "profile=debug",
        "seed=0,1",
        "trainer.num_threads=1",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    statuses = [json.loads(p.read_text())["status"] for p in tmp_path.glob("*/status.json")]
    assert statuses == ["done", "done"]
