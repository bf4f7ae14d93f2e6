"""What a run was computed on: the machine, the numeric settings and the code.

The same config and seed give Dice that differ by several hundredths between two CPUs (bf16
autocast on AVX512-BF16 or AMX units against fp32 elsewhere) and between thread counts, which
is more than most method effects. Every run therefore records this fingerprint in metrics.json,
and the benchmark pairs two runs only when their fingerprints agree on BLOCK_KEYS.

>>> sorted(machine_fingerprint("fp32", "cpu"))[:3]  # doctest: +SKIP
['commit', 'cpu_flags', 'cpu_model']
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

# the fields two runs of one benchmark block must share (hostname and python are kept for the
# record only: two identical machines under other names compute the same numbers)
BLOCK_KEYS = (
    "cpu_model",
    "cpu_flags",
    "gpu",
    "precision",
    "threads",
    "torch",
    "cuda",
    "tf32",
    "commit",
)
# the CPU features that change what bf16 autocast and the matrix kernels compute
NUMERIC_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2", "fma")


@functools.cache
def _cpuinfo() -> tuple[str, tuple[str, ...]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; platform's answer elsewhere."""
    model, flags = "", ()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = tuple(value.split())
    model = model or platform.processor() or platform.machine()
    return model, flags


def cpu_model() -> str:
    return _cpuinfo()[0]


def cpu_flags() -> str:
    """The numeric CPU features present, e.g. 'avx2 avx512_bf16 avx512f fma' ('' if none)."""
    present = set(_cpuinfo()[1])
    return " ".join(f for f in NUMERIC_FLAGS if f in present)


def _git(package: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(package), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


@functools.cache
def code_commit() -> str:
    """The git commit of the installed package's checkout ('+dirty' when its code or configs
    have uncommitted changes), or 'release <version>' for an installed wheel.
    GENSEG_CODE_VERSION, when set, is recorded instead (a copy without git history, a test)."""
    if os.environ.get("GENSEG_CODE_VERSION"):
        return os.environ["GENSEG_CODE_VERSION"]
    package = Path(__file__).resolve().parents[1]
    # what decides the numbers: the package and its config tree (not docs or results)
    watched = [str(package), str(package.parents[1] / "conf")]
    try:
        sha = _git(package, "rev-parse", "HEAD")
        dirty = _git(package, "status", "--porcelain", "--untracked-files=no", "--", *watched)
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"release {version('genseg-cli')}"
        except PackageNotFoundError:
            return "unknown"
    return sha + ("+dirty" if dirty else "")


def tf32_setting() -> str:
    """TF32 use of CUDA matrix products and cuDNN convolutions: 'matmul=on cudnn=off' etc."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    cudnn = torch.backends.cudnn.allow_tf32
    return f"matmul={'on' if matmul else 'off'} cudnn={'on' if cudnn else 'off'}"


def machine_fingerprint(precision: str, device: str | torch.device) -> dict[str, str | int]:
    """The fingerprint of a run computing in `precision` on `device`, read now (threads and TF32
    are the values in force, not the config's wish)."""
    dev = torch.device(device)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "none"
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "gpu": gpu,
        "precision": str(precision),
        "threads": int(torch.get_num_threads()),
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda or "none") if dev.type == "cuda" else "none",
        "tf32": tf32_setting() if dev.type == "cuda" else "n/a",
        "commit": code_commit(),
        "hostname": platform.node(),
        "python": platform.python_version(),
    }
