"""A run folder's guards: one process trains in a folder at a time, a user's own folder is never
taken for a run, and a sweep says which of its runs failed.

The lock is `fcntl.flock` on `<run>/.genseg.lock`, which names the holder (pid, host, start). The
kernel releases a flock when its process dies, however it dies, so the file a killed run leaves
behind locks nothing: the next run (or `resume=`) takes it over. The lock is released, and its
file removed, when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from hydra.experimental.callback import Callback

from genseg_cli.core.errors import GensegError

try:
    import fcntl
except ImportError:  # not POSIX: the pid in the file is all there is to go by
    fcntl = None  # type: ignore[assignment]

LOCK = ".genseg.lock"
# what makes a folder a run's: genseg's own files, or Hydra's (a config.yaml alone may be the
# user's own)
RUN_MARKERS = ("status.json", "overrides.yaml", ".hydra", LOCK)
FAILED_LIST = ".genseg_failed_runs"  # in a sweep folder while the sweep runs
_held: dict[Path, int] = {}  # run folder -> the descriptor holding its lock (this process)


def holder(path: Path) -> str:
    """Who holds a lock, as its file says ("pid 12 on host, since 2024-01-01 10:00")."""
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _alive_here(path: Path) -> bool:
    """Without flock: whether the pid in the lock file runs on this host."""
    try:
        info = json.loads(path.read_text())
        if info["host"] != socket.gethostname():
            return True  # cannot tell: assume it runs
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def lock_run_folder(run_dir: Path) -> None:
    """Hold the lock of `run_dir` (made if needed) for this process, or refuse with who holds
    it. Taking a lock this process holds already is a no-op."""
    run_dir = run_dir.resolve()
    if run_dir in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif _alive_here(path):
            raise BlockingIOError
    except BlockingIOError:
        os.close(fd)
        raise GensegError(
            f"{run_dir} is in use by another genseg run ({holder(path)}); wait for it to end "
            "or stop it, or choose another hydra.run.dir"
        ) from None
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    _held[run_dir] = fd


def release_run_folder(run_dir: Path) -> None:
    """Give up the lock of `run_dir` if this process holds it, and remove its file."""
    fd = _held.pop(run_dir.resolve(), None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        (run_dir / LOCK).unlink()
    os.close(fd)  # after the unlink: a run that opened the file meanwhile sees the run ended


def check_not_a_user_folder(chosen: Path) -> None:
    """Refuse a hydra.run.dir that holds files but no run: training would write config.yaml,
    train.log and the rest among (or over) the user's own files."""
    if not chosen.is_dir() or any((chosen / m).exists() for m in RUN_MARKERS):
        return
    files = sorted(p.name for p in chosen.iterdir())
    if files:
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        raise GensegError(
            f"hydra.run.dir={chosen} holds files that are not a run's ({shown}); genseg writes "
            "a run only into a new or empty folder: choose another one"
        )


def check_resume_target(args: list[str]) -> None:
    """`resume=` of a run that failed before training started: say so, not "not a run"."""
    given = [a.split("=", 1)[1] for a in args if a.startswith("resume=")]
    if not given:
        return
    run_dir = Path(given[-1]).expanduser().resolve()
    try:
        status = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return
    if isinstance(status, dict) and not (run_dir / "overrides.yaml").is_file():
        reason = str(status.get("reason") or "no reason recorded").splitlines()[0]
        raise GensegError(
            f"resume={run_dir}: the run {status.get('status', 'ended')} before training started "
            f"({reason}), so there is nothing to resume; fix that and train it anew without "
            "resume="
        )


# ----- a sweep's failed runs ----------------------------------------------------------------
def note_failed_run(sweep_dir: Path, run_dir: Path, reason: str) -> None:
    """Add a failed run of a sweep to the sweep's list (one line each; launchers in other
    processes append to the same file)."""
    line = json.dumps({"run": str(run_dir), "reason": reason.splitlines()[0] if reason else ""})
    with contextlib.suppress(OSError), open(sweep_dir / FAILED_LIST, "a") as handle:
        handle.write(line + "\n")


def take_failed_runs(sweep_dir: Path) -> list[dict[str, str]]:
    """The failed runs noted in a sweep folder, removing the list."""
    path = sweep_dir / FAILED_LIST
    try:
        lines = path.read_text().splitlines()
        path.unlink()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


class SweepFailures(Callback):
    """A Hydra callback: the failed runs of the sweep that just ended (`failed`, read by
    `genseg train` once Hydra returns)."""

    failed: list[dict[str, str]] = []

    def on_multirun_start(self, config: object, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))  # type: ignore[attr-defined]
        take_failed_runs(sweep_dir)  # a list an earlier sweep in this folder left
        SweepFailures.failed = []

    def on_multirun_end(self, config: object, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))  # type: ignore[attr-defined]
        SweepFailures.failed = take_failed_runs(sweep_dir)


SWEEP_CALLBACK = (
    "+hydra.callbacks.genseg_failures._target_=genseg_cli.stages.run_folder.SweepFailures"
)
