"""Deployable copies of a trained segmenter (TorchScript, ONNX), checked against PyTorch."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from genseg_cli.engine.files import write_json
from genseg_cli.engine.restore import TrainedRun
from genseg_cli.errors import GensegError

FORMATS = {"torchscript": "model.ts", "onnx": "model.onnx"}
TOLERANCE = 1e-3


def input_contract(run: TrainedRun) -> dict:
    """What a deployed model expects, written next to it as model.json."""
    size, channels = int(run.cfg.data.image_size), int(run.cfg.dataset.channels)
    return {
        "input": f"float32 N x {channels} x {size} x {size}, pixel values v in 0..255 "
        "mapped to v / 127.5 - 1, image resized to the square input",
        "output": "float32 N x 1 x H x W logits; sigmoid(logit) > threshold is the mask",
        "threshold": float(run.cfg.evaluation.threshold),
        "dataset": run.cfg.dataset.name,
        "backbone": run.cfg.backbone.name,
    }


def export_segmenter(run: TrainedRun, out: Path, fmt: str) -> dict:
    """Write the run's segmenter in `fmt` to `out` and measure its difference to PyTorch."""
    if fmt not in FORMATS:
        raise GensegError(f"export={fmt} is not one of {', '.join(FORMATS)}")
    model = copy.deepcopy(run.segmenter).float().cpu().eval()
    model = model.to(memory_format=torch.contiguous_format)
    size, channels = int(run.cfg.data.image_size), int(run.cfg.dataset.channels)
    example = torch.rand(2, channels, size, size) * 2 - 1
    path = out / FORMATS[fmt]
    with torch.no_grad():
        reference = model(example).numpy()
        exported = (
            _export_torchscript(model, example, path)
            if fmt == "torchscript"
            else _export_onnx(model, example, path)
        )
    diff = float(np.abs(exported - reference).max())
    if diff > TOLERANCE:
        raise GensegError(
            f"exported {fmt} model differs from PyTorch by {diff:.2e} (> {TOLERANCE}); not usable"
        )
    write_json(out / "model.json", {**input_contract(run), "format": fmt, "file": path.name})
    return {"path": str(path), "max_abs_diff": diff}


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> np.ndarray:
    traced = torch.jit.trace(model, example)
    traced.save(str(path))
    return torch.jit.load(str(path))(example).numpy()


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError as err:
        raise GensegError(
            "export=onnx needs onnx and onnxruntime: pip install 'genseg-cli[export]'"
        ) from err
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
        dynamo=False,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": example.numpy()})[0]
