"""Reopening a finished run (engine/restore.py)."""

from genseg_cli.core.config import compose


def test_a_finished_run_rebuilds_without_downloading_its_encoder_again():
    """evaluate/predict rebuild a run from its resolved config.yaml; best.pt holds every weight,
    so neither a local starting file nor an ImageNet download may be asked for again."""
    from omegaconf import OmegaConf

    from genseg_cli.engine.restore import without_starting_weights

    saved = OmegaConf.create(
        OmegaConf.to_container(
            compose(
                "train", ["backbone.encoder_weights=imagenet", "backbone.weights=/x.pt"]
            ).backbone,
            resolve=True,
        )
    )
    assert saved.model.encoder_weights == "imagenet"
    rebuilt = without_starting_weights(saved)
    assert rebuilt.weights is None and rebuilt.encoder_weights is None
    assert rebuilt.model.encoder_weights is None


def test_genseg_resumes_exactly_when_its_counters_do_not_line_up(data_dir, tmp_path):
    """Checkpoints every 2 steps, an upper step every 3: the run stops after step 5 and resumes
    from step 4's checkpoint, where genseg's own step count (steps_done) decides when the next
    upper steps come (6, not 7). A count left at 0 on resume, or one taken from the loop's step
    at another phase, puts them elsewhere, and history.csv and the scores differ."""
    import json

    import pandas as pd
    import pytest

    from genseg_cli.engine.checkpoint import TrainingInterrupted
    from genseg_cli.engine.loop import run_training
    from tests.engine.test_reliability import GENSEG_FAST, cfg_for, without_timing

    method = [*GENSEG_FAST, "mlo.arch_every=3", "trainer.steps=9"]
    whole = run_training(cfg_for(*method), tmp_path / "whole")
    with pytest.raises(TrainingInterrupted):
        run_training(cfg_for(*method, "trainer.stop_after=5"), tmp_path / "split")
    resumed = run_training(cfg_for(*method, f"resume={tmp_path / 'split'}"), tmp_path / "split")
    history = [pd.read_csv(tmp_path / d / "history.csv") for d in ("whole", "split")]
    assert list(history[0]["loss/val_upper"].dropna().index) != []  # upper steps were logged
    pd.testing.assert_frame_equal(*history)
    same = json.dumps(without_timing(resumed), sort_keys=True)
    assert same == json.dumps(without_timing(whole), sort_keys=True)
