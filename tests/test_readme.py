"""The README's backbone table is what the configs build: every `conf/backbone/` entry has a
row, and each row's parameter count is that of the network `genseg train` composes (2D: one
input channel, one class at 128 px; 3D: hippocampus)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genseg_cli.core.config import compose, conf_dir
from genseg_cli.nets.segmenters import build_segmenter

README = Path(__file__).resolve().parents[1] / "README.md"


def backbone_rows() -> dict[str, str]:
    """backbone name -> its parameters cell, from the table under '### Backbones'."""
    text = README.read_text().split("### Backbones", 1)[1]
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\| `(\w+)` \|.*\| ([^|]+) \|$", line.strip())
        if match:
            rows[match.group(1)] = match.group(2)
        elif rows and not line.startswith("|"):
            break
    return rows


def test_every_backbone_has_a_row() -> None:
    configs = {p.stem for p in (conf_dir() / "backbone").glob("*.yaml")}
    # deeplabv3 is listed inside deeplabv3_r50's row (the same network under its earlier name)
    assert set(backbone_rows()) | {"deeplabv3"} == configs


@pytest.mark.parametrize("name", sorted(backbone_rows()))
def test_parameter_counts_match_the_built_networks(name: str) -> None:
    cell = backbone_rows()[name]
    counts = [float(x) for x in re.findall(r"([\d.]+)M", cell)]
    cfg = compose("train", [f"backbone={name}"])
    built = [sum(p.numel() for p in build_segmenter(cfg.backbone, 2).parameters()) / 1e6]
    if "3D" in cell:
        volume = compose("train", [f"backbone={name}", "dataset=hippocampus"])
        built.append(sum(p.numel() for p in build_segmenter(volume.backbone, 3).parameters()) / 1e6)
    assert [round(b, 1) for b in built] == counts, f"{name}: README {cell}, built {built}"
