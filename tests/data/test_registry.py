from pathlib import Path

import pytest

from genseg_cli.core.errors import GensegError
from genseg_cli.data.registry import dataset_names, dataset_root, dataset_spec, require_present
from tests.data.config_names import CONFIGURED, DATASETS, GENERIC

REQUIRED_KEYS = {
    "name",
    "task",
    "dims",
    "channels",
    "metric",
    "label_budgets",
    "ood",
    "split",
    "prepare",
    "citation",
    "source",
}


def test_registry_lists_every_configured_dataset_but_the_generic_one():
    assert GENERIC in CONFIGURED and DATASETS  # the config tree was found and read
    assert dataset_names() == DATASETS


@pytest.mark.parametrize("name", CONFIGURED)
def test_each_entry_is_complete_and_consistent(name):
    spec = dataset_spec(name)
    assert set(spec.keys()) >= REQUIRED_KEYS
    assert spec.name == name
    assert spec.channels in (1, 3) and spec.dims in (2, 3) and spec.metric in ("dice", "iou")
    assert all(b >= 2 for b in spec.label_budgets)
    for ood in spec.ood:  # OOD sets are registry names with the same input kind
        assert dataset_spec(ood).dims == spec.dims


def test_protocol_ood_sets():
    assert list(dataset_spec("jsrt").ood) == ["nlm_mc", "nlm_sz"]
    assert list(dataset_spec("isic").ood) == ["ph2", "dermis", "dermquest"]
    assert list(dataset_spec("ph2").ood) == ["dermis", "dermquest"]


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(GensegError, match="unknown dataset 'lungz'.*jsrt"):
        dataset_spec("lungz")


def test_missing_dataset_names_path_and_prepare_command(tmp_path: Path):
    spec = dataset_spec("isic")
    with pytest.raises(GensegError, match=r"isic/images is missing.*genseg data prepare isic"):
        require_present(spec, dataset_root(spec, tmp_path))


def test_missing_data_directory_says_how_to_set_it(tmp_path: Path):
    spec = dataset_spec("jsrt")
    with pytest.raises(GensegError, match="does not exist.*GENSEG_DATA_DIR"):
        require_present(spec, dataset_root(spec, tmp_path / "nowhere"))


def test_folder_dataset_requires_a_root(tmp_path: Path):
    with pytest.raises(GensegError, match="dataset.root"):
        dataset_root(dataset_spec("folder"), tmp_path)
