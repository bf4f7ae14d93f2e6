"""Writing standard-layout pairs: size capping keeps aspect and exact 0/255 masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.prepare.fake_downloads import box, check_output, load, mask, rgb, run


def test_max_size_shrinks_keeping_aspect(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rgb(src / "images" / "a.jpg", size=(40, 20))
    mask(src / "masks" / "a.jpg", 0, 0, 20, 20, size=(40, 20))

    result = run("kvasir", src, tmp_path, max_size=10)

    check_output(result.dst, ["a"], ".jpg", size=(10, 5))
    expected = box(0, 0, 5, 5, size=(10, 5))
    np.testing.assert_array_equal(load(result.dst / "masks" / "a.png"), expected)
