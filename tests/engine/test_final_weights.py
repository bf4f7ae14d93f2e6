"""`genseg evaluate run_dir=RUN weights=final`: the last step's weights (checkpoints/last.pt,
which a run that ends done keeps only with trainer.keep_last=true) scored beside the kept ones; a
run whose final weights are gone or stale is refused in one line that says how to get them, with
nothing written. A stopped or failed run keeps last.pt: its resume needs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from genseg_cli.cli import main
from genseg_cli.core.files import load_torch, save_torch
from genseg_cli.engine.checkpoint import LAST
from tests.stages.test_cli import genseg


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(a finished 4-step JSRT run that kept its last.pt, step 4; its data dir: JSRT alone)."""
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt" / "images").is_dir():
        pytest.skip(f"real dataset jsrt not found in {DATA_DIR}")
    root = tmp_path_factory.mktemp("final")
    data = root / "data"
    data.mkdir()
    (data / "jsrt").symlink_to(DATA_DIR / "jsrt")  # its out-of-domain sets are absent
    run = root / "run"
    result = genseg(
        "train",
        "profile=debug",
        "trainer.checkpoint_every=2",
        "trainer.keep_last=true",
        f"hydra.run.dir={run}",
        env={"GENSEG_DATA_DIR": str(data)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return run, data


def evaluations(run: Path) -> list[Path]:
    return sorted((run / "evaluate").glob("*/metrics.json"))


def test_final_weights_are_scored_beside_the_kept(finished, monkeypatch, capsys) -> None:
    run, data = finished
    monkeypatch.setenv("GENSEG_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "200")
    # final weights that predict nothing, so a score of the kept ones cannot pass for them
    original = load_torch(run / LAST)
    assert original["step"] == 4
    zeroed = {**original, "method": {**original["method"]}}
    zeroed["method"]["segmenter"] = {
        k: torch.zeros_like(v) for k, v in original["method"]["segmenter"].items()
    }
    save_torch(run / LAST, zeroed)
    try:
        assert main(["evaluate", f"run_dir={run}", "weights=final", "device=cpu"]) == 0
    finally:
        save_torch(run / LAST, original)
    out = capsys.readouterr().out
    (path,) = evaluations(run)
    metrics = json.loads(path.read_text())
    kept = json.loads((run / "metrics.json").read_text())
    assert metrics["weights"] == "final" and metrics["weights_step"] == 4
    assert metrics["test"]["dice_mean"] == 0.0 < kept["test"]["dice_mean"]
    assert f"final weights (step 4) beside kept (step {kept['best_step']})" in out
    beside = out[out.index("beside kept") :]
    row = next(line for line in beside.splitlines() if line.strip("│ ").startswith("test"))
    assert f"{kept['test']['dice_mean']:.4f}" in row and "0.0000" in row
    # the run's out-of-domain sets are not in the data dir: said, not scored
    assert set(metrics["ood_absent"]) == {"nlm_mc", "nlm_sz"} and metrics["ood"] == {}
    assert "nlm_mc (OOD)" in out and "not scored" in out


@pytest.mark.parametrize("damage", ["stale", "missing"])
def test_final_weights_that_are_not_the_last_steps_are_refused(
    finished, monkeypatch, capsys, damage
) -> None:
    run, data = finished
    monkeypatch.setenv("GENSEG_DATA_DIR", str(data))
    original = load_torch(run / LAST)
    before = evaluations(run)
    if damage == "stale":  # as when trainer.checkpoint_every does not divide trainer.steps
        save_torch(run / LAST, {**original, "step": 2})
    else:
        (run / LAST).unlink()
    try:
        code = main(["evaluate", f"run_dir={run}", "weights=final", "device=cpu"])
    finally:
        save_torch(run / LAST, original)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    if damage == "stale":
        assert "holds step 2, not the run's last step 4" in err
    else:  # how to get final-weight scores: keep last.pt, or score them at the end of training
        assert f"has no {LAST}" in err and "train with trainer.keep_last=true" in err
        assert "evaluation.final_weights=true" in err and "metrics.json 'final'" in err
    assert "weights=kept" in err and len(err.strip().splitlines()) == 1
    assert evaluations(run) == before  # nothing written


@pytest.fixture(scope="module")
def ended(tmp_path_factory) -> dict[str, Path]:
    """One sweep on a small folder of pairs, a checkpoint every step: a run that ends done (with
    trainer.keep_last at its default), one stopped after step 2, one whose loss is NaN by step 2.
    Run folders by how they ended."""
    from tests.conftest import write_pair

    root = tmp_path_factory.mktemp("ended")
    for i in range(12):
        write_pair(root / "pairs", f"case{i:02d}")
    sweep = root / "sweep"
    result = genseg(
        "train", "-m", "profile=debug", "trainer.precision=fp32", "data.image_size=32",
        "dataset=folder", f"dataset.root={root / 'pairs'}", "dataset.channels=1", "n_labeled=4",
        "trainer.checkpoint_every=1", "optim.optimizer.lr=0.001,1e30", "trainer.stop_after=null,2",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]  # a sweep with failed runs
    runs: dict[str, Path] = {}
    for status in sweep.glob("*/status.json"):
        cfg = OmegaConf.load(status.parent / "config.yaml")
        name = "stopped" if cfg.trainer.stop_after else "done"
        runs[f"nan_{name}" if cfg.optim.optimizer.lr > 1 else name] = status.parent
    assert set(runs) == {"done", "stopped", "nan_done", "nan_stopped"}, runs
    return runs


def test_a_finished_run_drops_last_pt_a_stopped_or_failed_one_keeps_it(ended) -> None:
    status = {name: json.loads((run / "status.json").read_text()) for name, run in ended.items()}
    assert status["done"]["status"] == "done" and status["stopped"]["status"] == "interrupted"
    assert status["nan_done"]["status"] == "failed"
    assert not (ended["done"] / LAST).exists() and (ended["done"] / "checkpoints/best.pt").is_file()
    for name in ("stopped", "nan_done", "nan_stopped"):  # resume=RUN_DIR starts from it
        assert (ended[name] / LAST).is_file(), name
        assert load_torch(ended[name] / LAST)["step"] >= 1, name


def test_final_weights_of_a_run_without_last_pt_say_how_to_get_them(ended, capsys) -> None:
    code = main(["evaluate", f"run_dir={ended['done']}", "weights=final", "device=cpu"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err
    assert "trainer.keep_last=true" in err and "evaluation.final_weights=true" in err
    assert not (ended["done"] / "evaluate").exists()
