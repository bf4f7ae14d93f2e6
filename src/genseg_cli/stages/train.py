"""`genseg train [overrides]`: one training run (or a sweep with -m) from the composed config.

Before Hydra starts, the arguments are checked (`genseg_cli.stages.train_checks`). Inside each
run, a pre-flight verifies the data and builds the method before anything is written; when it
fails, a single run leaves no folder behind (a sweep's run is kept, marked failed, so that the
report lists it apart). `genseg train resume=RUN_DIR` continues a killed or stopped run in its
own directory with its saved overrides. Ctrl-C (SIGINT) and SIGTERM end a run as `interrupted`,
resumable from its last checkpoint, exit code 4.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.text import Text

from genseg_cli.core.config import conf_dir, register_resolvers
from genseg_cli.core.errors import STOPPED, GensegError
from genseg_cli.core.files import write_status
from genseg_cli.engine.checkpoint import TrainingInterrupted, drop_last
from genseg_cli.engine.run_kind import resume_point
from genseg_cli.stages.override_text import check_override_text
from genseg_cli.stages.run_folder import (
    LOCK,
    SWEEP_CALLBACK,
    SweepFailures,
    check_not_a_user_folder,
    check_resume_target,
    lock_run_folder,
    note_failed_run,
    release_run_folder,
)
from genseg_cli.stages.train_checks import (
    OVERRIDES,
    check_resumable,
    check_train_arguments,
    explicit_run_dir,
    resume_arguments,
    run_status,
)

log = logging.getLogger("genseg.train")
results_log = logging.getLogger("genseg.results")  # train.log only (conf/hydra/job_logging)
SIGNALS = (signal.SIGINT, signal.SIGTERM)
HYDRA_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "train.log")
RUN_FILES = ("config.yaml", OVERRIDES, "splits.json", "status.json", "tensorboard", LOCK)


class Stopped(BaseException):
    """Raised by the SIGINT/SIGTERM handler. A BaseException, as KeyboardInterrupt is, so that
    no `except Exception` on the way (e.g. around a file read) can swallow it."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM (kill, Slurm pre-emption) raise Stopped; a second signal
    while the run records its state is ignored, so the record is complete."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a launcher's worker thread)
        return

    def handler(signum: int, frame: object) -> None:
        for other in SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def record_config(cfg: DictConfig, run_dir: Path) -> None:
    """config.yaml (the resolved config) and, for a new run, its own overrides."""
    if not cfg.get("resume"):
        overrides = list(HydraConfig.get().overrides.task)
        OmegaConf.save(OmegaConf.create(overrides), run_dir / OVERRIDES)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)


def discard_new_run_dir(run_dir: Path, output_dir: Path) -> None:
    """Remove what this invocation wrote into a run folder it created (Hydra's files, genseg's
    own), then the folder and its parents up to `output_dir` where they are empty. Anything
    else, e.g. a file of the user's in a hydra.run.dir they chose, is left alone."""
    for name in (*HYDRA_FILES, *RUN_FILES):
        path = run_dir / name
        if path.is_file():
            path.unlink()
    for folder in (run_dir / ".hydra", run_dir / "checkpoints", run_dir):
        with contextlib.suppress(OSError):
            folder.rmdir()
    output_dir = output_dir.resolve()
    for parent in run_dir.resolve().parents:
        if parent == output_dir or output_dir not in parent.parents:
            break
        with contextlib.suppress(OSError):
            parent.rmdir()


def say(err: BaseException | str) -> None:
    """One error line on stderr, as the command line prints a GensegError."""
    Console(stderr=True).print(Text.assemble(("error:", "red"), f" {err}"), soft_wrap=True)


def preflight_failed(err: GensegError, run_dir: Path, cfg: DictConfig, owned: bool) -> None:
    """A run that failed before training: a sweep records it (failed, reason) in a folder it
    made, a single run leaves nothing behind; then the sweep goes on, a single run exits with
    the error's code."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        if owned:  # never over the status of a run that was there before (a finished one)
            write_status(run_dir, "failed", reason=str(err), stage="pre-flight")
        log.error("%s", err)
        note_failed_run(Path(HydraConfig.get().sweep.dir), run_dir, str(err))
        return
    if owned:
        discard_new_run_dir(run_dir, Path(cfg.paths.output_dir))
    say(err)
    raise SystemExit(err.exit_code)


def interrupted(stop: Stopped, run_dir: Path, cfg: DictConfig) -> None:
    """Record a run stopped by a signal as interrupted, resumable; stop the sweep too."""
    reason = f"stopped by {stop.signal_name}; {resume_point(run_dir, cfg)}"
    write_status(run_dir, "interrupted", reason=reason)
    log.warning("%s", reason)
    raise SystemExit(TrainingInterrupted.exit_code)


def record_crash(run_dir: Path, err: Exception) -> None:
    """status.json of a run that an unexpected error stopped: failed, with the traceback."""
    reason = f"{type(err).__name__}: {err}"
    write_status(run_dir, "failed", reason=reason, traceback=traceback.format_exc())


def train_task(cfg: DictConfig) -> float | None:
    """Hydra task: lock the run directory, pre-flight, then train into it, print the results,
    record the run's status."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        lock_run_folder(run_dir)
    except GensegError as err:  # another process trains here: touch nothing of its
        preflight_failed(err, run_dir, cfg, owned=False)
        return None
    try:
        return locked_task(cfg, run_dir)
    finally:
        release_run_folder(run_dir)


def locked_task(cfg: DictConfig, run_dir: Path) -> float | None:
    from genseg_cli.engine.loop import prepare_run, train_prepared
    from genseg_cli.evaluation.tables import print_results

    hydra_cfg = HydraConfig.get()
    resumed = bool(cfg.get("resume"))
    # a folder Hydra has just made for this run (not a resumed one, nor one reused by a script)
    owned = not resumed and not (run_dir / "status.json").exists()
    with stop_on_signals():
        try:
            if resumed:
                check_resumable(run_dir, cfg)
            elif run_status(run_dir) == "done":
                raise GensegError(
                    f"{run_dir} holds a finished run; genseg never trains over one: choose "
                    "another hydra.run.dir or delete that folder"
                )
            prepared = prepare_run(cfg)
        except Stopped as stop:
            if owned:
                discard_new_run_dir(run_dir, Path(cfg.paths.output_dir))
            say(f"stopped by {stop.signal_name} before training started; nothing was kept")
            raise SystemExit(STOPPED) from None
        except GensegError as err:
            preflight_failed(err, run_dir, cfg, owned)
            return None
        except Exception as err:  # a bug, not the user's input: keep the folder to report it
            record_crash(run_dir, err)
            raise
        try:
            record_config(cfg, run_dir)
            write_status(run_dir, "running")
            metrics = train_prepared(prepared, run_dir)
        except Stopped as stop:
            interrupted(stop, run_dir, cfg)
        except GensegError as err:
            stopped = isinstance(err, TrainingInterrupted)
            write_status(run_dir, "interrupted" if stopped else "failed", reason=str(err))
            (log.warning if stopped else log.error)("%s", err)
            if hydra_cfg.mode == RunMode.MULTIRUN:  # the other runs of the sweep go on
                note_failed_run(Path(hydra_cfg.sweep.dir), run_dir, str(err))
                return None
            raise SystemExit(err.exit_code) from None
        except Exception as err:
            record_crash(run_dir, err)
            raise
    write_status(run_dir, "done")
    if not cfg.trainer.get("keep_last", False):  # only a stopped or failed run resumes from it
        drop_last(run_dir)
    console = Console(record=True)  # the table is drawn once: on the terminal, then into train.log
    print_results(metrics, console)
    results_log.info("results\n%s", console.export_text(styles=False))
    log.info("run directory: %s", run_dir)
    return metrics["test"]["dice_mean"]


def check_output_dir(args: list[str]) -> None:
    """Fail before Hydra starts when runs cannot be written (paths.output_dir's default is
    conf/paths/default.yaml: GENSEG_OUTPUT_DIR, else ./outputs)."""
    given = [a.split("=", 1)[1] for a in args if a.startswith("paths.output_dir=")]
    folder = Path(given[-1] if given else os.environ.get("GENSEG_OUTPUT_DIR", "outputs"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a probe of this process's own: runs started together (a sweep's launchers, a grid's two
        # streams) share the folder, and one shared name let one run delete the other's probe
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".genseg_write_test"):
            pass
    except OSError as err:
        raise GensegError(
            f"cannot write runs to {folder}: {err.strerror}; set "
            "GENSEG_OUTPUT_DIR or paths.output_dir to a writable folder"
        ) from err


def main(args: list[str]) -> int:
    """Check the arguments, then run the Hydra application with them as its command line."""
    if any(a in ("-h", "--help") for a in args):
        from genseg_cli.stages.train_help import train_help

        print(train_help())
        return 0
    check_resume_target(args)
    args = resume_arguments(args)
    if not any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        check_output_dir(args)
        check_override_text(args)
        check_train_arguments(args)
        chosen = explicit_run_dir(args)
        resuming = any(a.startswith("resume=") for a in args)
        if chosen is not None and not resuming and run_status(chosen) == "done":
            raise GensegError(
                f"hydra.run.dir={chosen} holds a finished run; genseg never trains over "
                "one: choose another folder or delete that one"
            )
        if chosen is not None:
            if not resuming:
                check_not_a_user_folder(chosen)
            lock_run_folder(chosen)  # before Hydra writes its files there
    sweep = any(a in ("-m", "--multirun") for a in args)
    register_resolvers()
    app = hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(
        train_task
    )
    SweepFailures.failed = []
    sys.argv = ["genseg train", *args, *([SWEEP_CALLBACK] if sweep else [])]
    app()
    return sweep_summary(SweepFailures.failed)


def sweep_summary(failed: list[dict[str, str]]) -> int:
    """After a sweep: the list of its failed runs on stderr, exit 1; 0 when every run ended."""
    if not failed:
        return 0
    lines = [f"{len(failed)} {'run' if len(failed) == 1 else 'runs'} of the sweep failed:"]
    lines += [f"  {item['run']}: {item['reason']}" for item in failed]
    Console(stderr=True).print("\n".join(lines), highlight=False, soft_wrap=True, markup=False)
    return 1
