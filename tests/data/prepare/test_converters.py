"""The CONVERTERS table: one converter per configured dataset, each naming its layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseg_cli.core.errors import GensegError
from genseg_cli.data.prepare import CONVERTERS, prepare_dataset
from tests.data.config_names import DATASETS


def test_every_converter_is_registered() -> None:
    assert set(CONVERTERS) == set(DATASETS)


def test_absent_layout_names_expected_pattern(tmp_path: Path) -> None:
    (tmp_path / "src" / "random").mkdir(parents=True)
    with pytest.raises(GensegError) as info:
        prepare_dataset("isic", tmp_path / "src", tmp_path / "out")
    message = str(info.value)
    assert str(tmp_path / "src") in message
    assert "ISIC2018_Task1-2_Training_Input/*.jpg" in message
    assert "ISIC2018_Task1_Training_GroundTruth/*_segmentation.png" in message
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize("name", sorted(CONVERTERS))
def test_every_converter_describes_its_layout(tmp_path: Path, name: str) -> None:
    (tmp_path / "src" / "unrelated").mkdir(parents=True)
    with pytest.raises(GensegError, match="expected") as info:
        prepare_dataset(name, tmp_path / "src", tmp_path / "out")
    assert str(tmp_path / "src") in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
