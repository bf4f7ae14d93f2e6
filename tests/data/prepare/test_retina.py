"""Retinal OCT converter: intraretinal cystoid fluid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.prepare.fake_downloads import check_output, grey, mask, run


@pytest.mark.parametrize(("images", "masks"), [("image", "mask"), ("images", "masks")])
def test_icfluid(tmp_path: Path, images: str, masks: str) -> None:
    src = tmp_path / "src"
    for key in ("oct_1", "oct_2"):
        grey(src / images / f"{key}.png")
        mask(src / masks / f"{key}.png", value=1)

    result = run("icfluid", src, tmp_path)

    check_output(result.dst, ["oct_1", "oct_2"], ".png")
