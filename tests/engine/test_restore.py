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
