"""Deployable copies of a trained segmenter (TorchScript, ONNX), checked against PyTorch.

2D runs take N x C x S x S images, 3D runs N x C x D x H x W volumes (`dataset.volume_shape`);
model.json, written next to the model, states that contract.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from genseg_cli.data.registry import class_names
from genseg_cli.data.samples import model_size
from genseg_cli.engine.files import write_json
from genseg_cli.engine.restore import TrainedRun
from genseg_cli.errors import GensegError

FORMATS = {"torchscript": "model.ts", "onnx": "model.onnx"}
TOLERANCE = 1e-3


def input_shape(run: TrainedRun) -> list[int]:
    """One input's shape (without the batch axis): C x S x S in 2D, C x D x H x W in 3D.

    >>> input_shape(run)  # a hippocampus run
    [1, 32, 48, 32]
    """
    size = model_size(run.cfg)
    spatial = list(size) if isinstance(size, tuple) else [size, size]
    return [int(run.cfg.dataset.channels), *spatial]


def input_contract(run: TrainedRun) -> dict:
    """What a deployed model expects, written next to it as model.json."""
    shape = input_shape(run)
    contract = image_contract(shape) if len(shape) == 3 else volume_contract(run, shape)
    return {
        **contract,
        "input_shape": ["N", *shape],  # N: any batch size (dynamic in ONNX)
        "threshold": float(run.cfg.evaluation.threshold),
        "dataset": run.cfg.dataset.name,
        "backbone": run.cfg.backbone.name,
    }


def image_contract(shape: list[int]) -> dict:
    """Input and output of a 2D segmenter (binary: one logit channel)."""
    channels, size = shape[0], shape[1]
    return {
        "input": f"float32 N x {channels} x {size} x {size}, pixel values v in 0..255 "
        "mapped to v / 127.5 - 1, image resized to the square input",
        "output": "float32 N x 1 x H x W logits; sigmoid(logit) > threshold is the mask",
    }


def volume_contract(run: TrainedRun, shape: list[int]) -> dict:
    """Input and output of a 3D segmenter (multi-class: one logit channel per class)."""
    channels, spatial = shape[0], " x ".join(str(s) for s in shape[1:])
    classes = ["background", *class_names(run.cfg.dataset)]
    return {
        "input": f"float32 N x {channels} x {spatial}: each volume clipped to its own "
        "0.5-99.5th intensity percentiles, mapped linearly to [-1, 1], resized (trilinear)",
        "output": f"float32 N x {len(classes)} x {spatial} logits; resized (trilinear) to the "
        "volume's shape, argmax over channels is the label map (index into classes)",
        "classes": classes,
    }


def export_segmenter(run: TrainedRun, out: Path, fmt: str) -> dict:
    """Write the run's segmenter in `fmt` to `out` and measure its difference to PyTorch."""
    if fmt not in FORMATS:
        raise GensegError(f"export={fmt} is not one of {', '.join(FORMATS)}")
    model = copy.deepcopy(run.segmenter).float().cpu().eval()
    model = model.to(memory_format=torch.contiguous_format)
    example = torch.rand(2, *input_shape(run)) * 2 - 1
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
