"""The upper step's fp32 is IEEE fp32: TF32 is set explicitly when a runtime is resolved, and held
off inside the upper step whatever the run's setting (on CPU the flags are checked, not the
maths)."""

from __future__ import annotations

import pytest
import torch

from genseg_cli.core.config import compose
from genseg_cli.core.runtime import exact_fp32, resolve_runtime, set_tf32, tf32_state
from genseg_cli.engine.loop import build_method
from genseg_cli.methods import genseg_upper as genseg_module

OFF = {"cuda_matmul_tf32": False, "cudnn_tf32": False, "float32_matmul_precision": "highest"}


@pytest.fixture
def tf32_restored():
    before = tf32_state()
    yield
    set_tf32(before["cudnn_tf32"])


def test_a_runtime_sets_tf32_explicitly(tf32_restored):
    torch.backends.cudnn.allow_tf32 = True  # torch's default for convolutions
    runtime = resolve_runtime("cpu", "fp32", False)
    assert runtime.tf32 is False and tf32_state() == OFF
    assert resolve_runtime("cpu", "fp32", False, tf32=True).tf32 is True
    assert tf32_state()["cudnn_tf32"] and tf32_state()["cuda_matmul_tf32"]
    with exact_fp32():
        assert tf32_state() == OFF
    assert tf32_state()["cudnn_tf32"]  # as it was outside


@pytest.mark.parametrize(("upper", "inside"), [("fp32", OFF), ("auto", None)])
def test_the_upper_step_runs_with_tf32_off_and_outside_autocast(
    upper, inside, tf32_restored, monkeypatch
):
    """With mlo.upper_precision=fp32 (the default) a bf16 run's upper step sees no autocast and
    no TF32; with auto it runs under the run's autocast and TF32 as the run set it."""
    cfg = compose("train", ["profile=debug", "method=genseg", f"mlo.upper_precision={upper}"])
    method = build_method(cfg, resolve_runtime("cpu", "bf16", False, tf32=True))
    seen = {}

    def spy(mode, problem, synthesise, targets, *args, **kwargs):
        with problem.autocast():
            seen["autocast"] = torch.is_autocast_enabled("cpu")
        seen["tf32"] = tf32_state()
        return [torch.zeros_like(t) for t in targets], torch.tensor(0.0)

    monkeypatch.setattr(genseg_module, "hypergradient", spy)
    size = method.spec.model_size
    images, masks = torch.zeros(2, 1, size, size), torch.zeros(2, 1, size, size)
    method.val = (images, masks)
    method.upper_hypergradient(images, masks, masks)
    assert seen["autocast"] is (upper == "auto")
    if inside is None:
        assert seen["tf32"]["cudnn_tf32"] is True
    else:
        assert seen["tf32"] == inside
    assert tf32_state()["cudnn_tf32"] is True  # the run's own setting afterwards
