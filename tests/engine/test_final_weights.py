"""`genseg evaluate run_dir=RUN weights=final`: the last step's weights (checkpoints/last.pt)
scored beside the kept ones; a run whose final weights are gone or stale is refused in one line
with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genseg_cli.cli import main
from genseg_cli.core.files import load_torch, save_torch
from genseg_cli.engine.checkpoint import LAST
from tests.stages.test_cli import genseg


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(a finished 4-step JSRT run whose last.pt is its step 4, its data dir: JSRT alone)."""
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
    else:
        assert f"has no {LAST}: its final weights were not kept" in err
    assert "weights=kept" in err
    assert evaluations(run) == before  # nothing written
