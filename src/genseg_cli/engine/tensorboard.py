"""Optional TensorBoard event files beside history.csv (extra `tensorboard`)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class ScalarLog:
    """Writes every numeric value of a step's row to `<run>/tensorboard` when enabled.

    `mode`: "auto" (when tensorboard is installed), true or false.

    >>> scalars = ScalarLog(run_dir, "auto")
    >>> scalars.add({"loss/seg": 0.3}, step=1)
    """

    def __init__(self, run_dir: Path, mode: str | bool = "auto") -> None:
        installed = importlib.util.find_spec("tensorboard") is not None
        if mode is True and not installed:
            log.warning(
                "trainer.tensorboard=true but tensorboard is not installed; "
                "pip install 'genseg-cli[tensorboard]'"
            )
        self.writer = None
        if installed and mode in (True, "auto"):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def add(self, row: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in row.items():
                if key != "step":
                    self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
