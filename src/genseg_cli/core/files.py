"""Run-directory files, written atomically so a crash never leaves half a result behind, and
checkpoints that hold only tensors and plain types, so loading one never runs code."""

from __future__ import annotations

import functools
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genseg_cli.core.errors import GensegError


@functools.cache
def _umask() -> int:
    """The process umask. /proc states it; elsewhere it can only be read by setting it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp creates 0600; results are shared files, so give them the mode open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: Any) -> None:
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    _atomic(path, lambda tmp: frame.to_csv(tmp, index=False))


def plain(obj: Any) -> Any:
    """`obj` with NumPy arrays as tensors and NumPy scalars as Python numbers, recursively, so
    that `torch.load(weights_only=True)` can read it back."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple
        return type(obj)(*(plain(v) for v in obj))
    if isinstance(obj, list | tuple):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_torch(path: Path, obj: Any) -> None:
    """A checkpoint of tensors and plain types (see `load_torch`)."""
    _atomic(path, lambda tmp: torch.save(plain(obj), tmp))


def load_torch(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """A checkpoint written by `save_torch`, read with weights_only=True: a file that holds any
    other Python object is refused, since unpickling it could run code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err).strip().splitlines()[-1][:200] if str(err).strip() else ""
        raise GensegError(
            f"{path} holds Python objects besides tensors and plain types ({detail}); genseg "
            "only loads checkpoints it can read safely (weights_only). Use a checkpoint "
            "written by this version of genseg, or train the run again"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise GensegError(
            f"cannot read checkpoint {path}: {str(err).splitlines()[0][:200]}; the file is "
            "truncated or corrupt; delete it or train the run again"
        ) from err


def refuse_non_empty(folder: Path, key: str) -> None:
    """Refuse to write into a folder that already holds files (nothing of the user's is ever
    overwritten); a missing or empty folder is fine."""
    if folder.exists() and not folder.is_dir():
        raise GensegError(f"{key}={folder} is a file, not a folder; choose a new {key}=...")
    if folder.is_dir() and any(folder.iterdir()):
        raise GensegError(f"{folder} is not empty; choose a new {key}=... (nothing was written)")


def require_writable(folder: Path, key: str) -> None:
    """Refuse, before any work, a folder that cannot be made or written (a read-only run folder,
    a path under a file); nothing is created to find out."""
    existing = folder.expanduser().absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "is not a folder" if not existing.is_dir() else "is not writable"
        raise GensegError(
            f"cannot write to {folder}: {existing} {why}; give {key}=DIR in a folder you can "
            "write (nothing was written)"
        )


def write_status(run_dir: Path, status: str, **details: Any) -> None:
    """status.json: running | done | interrupted | failed (with a reason). Reports trust only
    `done`."""
    write_json(run_dir / "status.json", {"status": status, **details})
