"""Device and numeric precision: CUDA when present, bf16/fp16 autocast where it pays off."""

from __future__ import annotations

import contextlib
import logging
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
    device: str = "auto", precision: str = "auto", channels_last: bool = True
) -> Runtime:
    """Turn the trainer's `device` and `precision` settings into a Runtime.

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
    return Runtime(device=dev, precision=precision, channels_last=channels_last)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
