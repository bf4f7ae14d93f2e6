"""Tiny imitations of official downloads, built in tmp_path, and checks of the output layout."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

from genseg_cli.data.prepare import PrepareResult, prepare_dataset

W, H = 20, 16  # fixture image size (width, height)


def save(array: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def rgb(path: Path, seed: int = 0, size: tuple[int, int] = (W, H)) -> Path:
    rng = np.random.default_rng(seed)
    return save(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), path)


def grey(path: Path, seed: int = 0, size: tuple[int, int] = (W, H)) -> Path:
    rng = np.random.default_rng(seed)
    return save(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), path)


def box(x0: int, y0: int, x1: int, y1: int, value: int = 255, size=(W, H)) -> np.ndarray:
    array = np.zeros((size[1], size[0]), dtype=np.uint8)
    array[y0:y1, x0:x1] = value
    return array


def mask(path: Path, x0=2, y0=3, x1=9, y1=10, value=255, size=(W, H), **kwargs) -> Path:
    return save(box(x0, y0, x1, y1, value, size), path, **kwargs)


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def check_output(dst: Path, ids: list[str], ext: str, size=(W, H)) -> None:
    """The standard layout: one image and one 0/255 'L' mask of the same size per id."""
    assert sorted(p.name for p in (dst / "images").iterdir()) == [f"{i}{ext}" for i in ids]
    assert sorted(p.name for p in (dst / "masks").iterdir()) == [f"{i}.png" for i in ids]
    for key in ids:
        with Image.open(dst / "images" / f"{key}{ext}") as image:
            assert image.size == size
            assert image.mode == ("L" if ext == ".png" else "RGB")
        with Image.open(dst / "masks" / f"{key}.png") as m:
            assert m.mode == "L" and m.size == size
        assert set(np.unique(load(dst / "masks" / f"{key}.png"))) <= {0, 255}
    assert not dst.with_name(dst.name + ".partial").exists()


def split_rows(dst: Path) -> list[str]:
    return (dst / "split.csv").read_text().splitlines()


def run(name: str, src: Path, tmp_path: Path, **kwargs) -> PrepareResult:
    result = prepare_dataset(name, src=src, dst=tmp_path / "out", **kwargs)
    assert result.dst == tmp_path / "out"
    assert result.name == name
    return result


def nifti(path: Path, shape=(4, 5, 3)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros(shape, dtype=np.int16), np.eye(4)), path)
