"""`genseg train [overrides]`: one training run (or a sweep with -m) from the composed config.

`genseg train resume=RUN_DIR` continues a killed or stopped run in its own directory: the run's
saved overrides are applied again, and a config that differs from the saved one is refused.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.config import conf_dir
from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import write_status
from genseg_cli.engine.checkpoint import TrainingInterrupted

log = logging.getLogger("genseg.train")
# keys that may differ between a run and its resumption: where things live, how it is shown
RESUME_FREE = {"resume", "trainer.stop_after", "trainer.progress", "trainer.num_threads"}
RESUME_FREE_PREFIXES = ("paths.",)
RESUME_FREE_SUFFIXES = ("cache_dir",)
OVERRIDES = "overrides.yaml"  # the run's own command-line overrides (Hydra's .hydra/ copy is
# rewritten by every later invocation in the same directory, a refused resume included)


def flat(cfg: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        out.update(flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def config_differences(saved: DictConfig, current: DictConfig) -> list[str]:
    """Dotted keys whose values differ between two resolved configs (resume-free keys aside)."""
    a = flat(OmegaConf.to_container(saved, resolve=True))
    b = flat(OmegaConf.to_container(current, resolve=True))
    return sorted(
        k
        for k in a.keys() | b.keys()
        if a.get(k) != b.get(k)
        and k not in RESUME_FREE
        and not k.startswith(RESUME_FREE_PREFIXES)
        and not k.endswith(RESUME_FREE_SUFFIXES)
    )


def start_run(cfg: DictConfig, run_dir: Path) -> None:
    """Write config.yaml, or check it against the saved one when resuming."""
    saved = run_dir / "config.yaml"
    if cfg.get("resume"):
        if not saved.is_file():
            raise GensegError(f"resume={run_dir}: no config.yaml there; is it a genseg run?")
        differing = config_differences(OmegaConf.load(saved), cfg)
        if differing:
            raise GensegError(
                f"resume={run_dir}: the config differs from the saved run in "
                f"{', '.join(differing[:8])}; resume with the same settings"
            )
    else:
        overrides = list(HydraConfig.get().overrides.task)
        OmegaConf.save(OmegaConf.create(overrides), run_dir / OVERRIDES)
    OmegaConf.save(cfg, saved, resolve=True)


def interrupt_on_sigterm(run_dir: Path):
    """A SIGTERM (kill, Slurm pre-emption) ends the run as interrupted, resumable from last.pt."""

    def handler(signum, frame) -> None:
        raise TrainingInterrupted(
            f"stopped by SIGTERM; continue with: genseg train resume={run_dir}"
        )

    return handler


def train_task(cfg: DictConfig) -> float | None:
    """Hydra task: train into the run directory, print the results, record the run's status."""
    from genseg_cli.engine.loop import run_training
    from genseg_cli.evaluation.tables import print_results

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    signal.signal(signal.SIGTERM, interrupt_on_sigterm(run_dir))
    try:
        start_run(cfg, run_dir)
        write_status(run_dir, "running")
        metrics = run_training(cfg, run_dir)
    except GensegError as err:
        interrupted = isinstance(err, TrainingInterrupted)
        write_status(run_dir, "interrupted" if interrupted else "failed", reason=str(err))
        (log.warning if interrupted else log.error)("%s", err)
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


def resume_arguments(args: list[str]) -> list[str]:
    """For resume=RUN_DIR: the run's saved overrides, the user's arguments, and its directory."""
    given = [a for a in args if a.startswith("resume=")]
    if not given:
        return args
    run_dir = Path(given[-1].split("=", 1)[1]).expanduser().resolve()
    saved = run_dir / OVERRIDES
    if not saved.is_file():
        raise GensegError(f"resume={run_dir}: not a genseg run directory (no {OVERRIDES})")
    previous = [
        o
        for o in OmegaConf.load(saved)
        if not str(o).startswith(("resume=", "trainer.stop_after="))
    ]
    user = [a for a in args if not a.startswith("resume=")]
    keys = {a.split("=", 1)[0] for a in user}
    kept = [o for o in previous if str(o).split("=", 1)[0] not in keys]
    return [*kept, *user, f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def check_output_dir(args: list[str]) -> None:
    """Fail before Hydra starts when runs cannot be written (paths.output_dir's default is
    conf/paths/default.yaml: GENSEG_OUTPUT_DIR, else ./outputs)."""
    given = [a.split("=", 1)[1] for a in args if a.startswith("paths.output_dir=")]
    folder = Path(given[-1] if given else os.environ.get("GENSEG_OUTPUT_DIR", "outputs"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".genseg_write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise GensegError(
            f"cannot write runs to {folder}: {err.strerror}; set "
            "GENSEG_OUTPUT_DIR or paths.output_dir to a writable folder"
        ) from err


def main(args: list[str]) -> int:
    """Run the Hydra application with `args` as its command line."""
    if not any(a in ("-h", "--help", "--cfg", "-c", "--info") for a in args):
        check_output_dir(args)
    app = hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(
        train_task
    )
    sys.argv = ["genseg train", *resume_arguments(args)]
    app()
    return 0
