"""An exponential moving average of a network's weights (Mean Teacher's teacher)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EmaTeacher(nn.Module):
    """theta' <- decay * theta' + (1 - decay) * theta after each student step; buffers (batch-norm
    statistics) are copied. The decay starts low, min(decay, (1 + t) / (10 + t)), so the teacher
    leaves the random initial weights quickly (as in Tarvainen and Valpola's code)."""

    def __init__(self, student: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ssl.ema_decay={decay} must lie in [0, 1)")
        self.decay = float(decay)
        self.network = copy.deepcopy(student).requires_grad_(False).eval()
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        t = int(self.updates)
        return min(self.decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        decay = self.current_decay()
        for teacher_p, student_p in zip(
            self.network.parameters(), student.parameters(), strict=True
        ):
            teacher_p.lerp_(student_p.detach(), 1.0 - decay)
        for teacher_b, student_b in zip(self.network.buffers(), student.buffers(), strict=True):
            teacher_b.copy_(student_b)
        self.updates += 1

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        return self.network(images)
