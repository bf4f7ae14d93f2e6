"""Deployable copies of a trained segmenter (TorchScript, ONNX), checked against PyTorch.

2D segmenters take N x C x S x S images, 3D ones N x C x D x H x W volumes (`dataset.volume_shape`);
model.json, written next to the model, states that contract (in the words of the spec's codec).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import write_json
from genseg_cli.data.spec import DataSpec

FORMATS = {"torchscript": "model.ts", "onnx": "model.onnx"}
TOLERANCE = 1e-3


def input_shape(spec: DataSpec) -> list[int]:
    """One input's shape (without the batch axis): C x S x S in 2D, C x D x H x W in 3D.

    >>> input_shape(spec)  # a hippocampus run
    [1, 32, 48, 32]
    """
    return [spec.image_channels, *spec.spatial]


def input_contract(spec: DataSpec, threshold: float, backbone: str) -> dict:
    """What a deployed model expects, written next to it as model.json."""
    return {
        **spec.codec.model_contract(spec),
        "input_shape": ["N", *input_shape(spec)],  # N: any batch size (dynamic in ONNX)
        "threshold": float(threshold),
        "dataset": spec.name,
        "backbone": backbone,
    }


def export_segmenter(
    segmenter: nn.Module, spec: DataSpec, out: Path, fmt: str, threshold: float, backbone: str
) -> dict:
    """Write `segmenter` (of a run with data `spec`, its evaluation threshold and backbone name)
    in `fmt` to `out` and measure its difference to PyTorch."""
    if fmt not in FORMATS:
        raise GensegError(f"export={fmt} is not one of {', '.join(FORMATS)}")
    model = copy.deepcopy(segmenter).float().cpu().eval()
    model = model.to(memory_format=torch.contiguous_format)
    example = torch.rand(2, *input_shape(spec)) * 2 - 1
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
    contract = input_contract(spec, threshold, backbone)
    write_json(out / "model.json", {**contract, "format": fmt, "file": path.name})
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
    runtime = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return runtime.run(None, {"image": example.numpy()})[0]
