"""`genseg train [overrides]`: one training run (or a sweep with -m) from the composed config."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from genseg_cli.config import conf_dir
from genseg_cli.engine.files import write_status
from genseg_cli.errors import GensegError

log = logging.getLogger("genseg.train")


def train_task(cfg: DictConfig) -> float | None:
    """Hydra task: train into the run directory, print the results, record the run's status."""
    from genseg_cli.engine.loop import run_training
    from genseg_cli.evaluation.tables import print_results

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    write_status(run_dir, "running")
    try:
        metrics = run_training(cfg, run_dir)
    except GensegError as err:
        write_status(run_dir, "failed", reason=str(err))
        log.error("%s", err)
        if hydra_cfg.mode == RunMode.MULTIRUN:  # the other runs of the sweep go on
            return None
        raise SystemExit(err.exit_code) from None
    except Exception as err:
        write_status(
            run_dir,
            "failed",
            reason=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(),
        )
        raise
    write_status(run_dir, "done")
    print_results(metrics)
    log.info("run directory: %s", run_dir)
    return metrics["test"]["dice_mean"]


def main(args: list[str]) -> int:
    """Run the Hydra application with `args` as its command line."""
    app = hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(
        train_task
    )
    sys.argv = ["genseg train", *args]
    app()
    return 0
