"""Device and numeric precision: CUDA when present, bf16/fp16 autocast where it pays off.

TF32 (10-bit mantissa matrix products and convolutions on Ampere and later GPUs) is set
explicitly when a runtime is resolved: off unless asked for, so "fp32" means IEEE fp32;
`exact_fp32()` holds it off whatever the setting (the upper step), and `tf32_state()` says what
is in force.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from genseg_cli.core.errors import GensegError

log = logging.getLogger(__name__)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    """Where and how tensors are computed. `autocast()` is a no-op context in fp32."""

    device: torch.device
    precision: str  # fp32 | bf16 | fp16
    channels_last: bool
    tf32: bool = False  # TF32 for fp32 matrix products and convolutions on CUDA

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A real scaler for fp16 (whose small gradients underflow), a disabled one otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AMX or AVX512-BF16 units (else bf16 autocast is slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_runtime(
    device: str = "auto", precision: str = "auto", channels_last: bool = True, tf32: bool = False
) -> Runtime:
    """Turn the trainer's `device` and `precision` settings into a Runtime, and set TF32 as
    asked (off by default).

    >>> resolve_runtime("cpu", "fp32").precision
    'fp32'
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GensegError(
            f"trainer.device={device} but CUDA is not available; use trainer.device=auto"
        )
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision not in ("fp32", *DTYPES):
        raise GensegError(f"trainer.precision={precision} is not one of auto, fp32, bf16, fp16")
    if precision == "fp16" and dev.type == "cpu":
        raise GensegError("trainer.precision=fp16 needs CUDA; on CPU use bf16 or fp32")
    set_tf32(tf32)
    return Runtime(device=dev, precision=precision, channels_last=channels_last, tf32=tf32)


def set_tf32(enabled: bool) -> None:
    """TF32 on or off for CUDA matrix products and cuDNN convolutions. The allow_tf32 flags,
    not torch's newer fp32_precision ones: a process that sets the new ones cannot read the old
    ones any more, and libraries (MONAI) read them."""
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


def tf32_state() -> dict[str, bool | str]:
    """What fp32 maths may run in TF32 now: CUDA matrix products, cuDNN convolutions, and
    torch's float32 matmul precision ("highest" is IEEE fp32)."""
    return {
        "cuda_matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off inside (real fp32 convolutions and matrix products), as it was outside."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    set_tf32(False)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def forked_rng(device: torch.device | str, seed: int | None = None) -> Iterator[None]:
    """Inside, torch's streams (the CPU's and `device`'s), seeded with `seed` when given; outside,
    they are as they were: draws made inside never shift a run's own stream."""
    device = torch.device(device)
    gpus = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        if seed is not None:
            torch.manual_seed(seed)
        yield
