"""Unlabeled ids: pool images outside the labeled ones, never a test id, nested by count."""

import pytest

from genseg_cli.core.errors import GensegError
from genseg_cli.data.registry import dataset_names, dataset_spec
from genseg_cli.data.splits import make_splits

IDS = [f"img{i:03d}" for i in range(240)]
TWO_D = [
    n
    for n in dataset_names()
    if dataset_spec(n).dims == 2 and dataset_spec(n).split.get("test_fraction")
]


@pytest.mark.parametrize("name", TWO_D)
@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_unlabeled_ids_never_overlap_test_or_labeled_ids(name, seed):
    spec = dataset_spec(name)
    budget = int(spec.label_budgets[0])
    s = make_splits(IDS, spec, budget, seed, 0.2, n_unlabeled=None)
    labeled = set(s.train) | set(s.val)
    assert s.unlabeled, "every pool image outside the labeled ones is unlabeled by default"
    assert not set(s.unlabeled) & set(s.test)
    assert not set(s.unlabeled) & labeled
    assert set(s.unlabeled) | labeled == set(s.pool)


OFFICIAL = [
    n
    for n in dataset_names()
    if dataset_spec(n).split.get("pool") and dataset_spec(n).split.get("test")
]


def official_table(name: str):
    """The dataset's own split.csv where the datasets are present, else a table in its form
    (pool and test values as the registry names them)."""
    from genseg_cli.data.io import read_split_table
    from genseg_cli.data.registry import dataset_root
    from tests.conftest import DATA_DIR

    spec = dataset_spec(name)
    root = dataset_root(spec, DATA_DIR)
    table = read_split_table(root) if (root / "split.csv").is_file() else None
    if table is not None:
        return table, True
    pool_value, test_value = spec.split.pool[0], spec.split.test[0]
    values = [pool_value] * 3 + [test_value]
    return {key: values[i % len(values)] for i, key in enumerate(IDS)}, False


@pytest.mark.parametrize("name", OFFICIAL)
@pytest.mark.parametrize("seed", [0, 3])
def test_unlabeled_ids_respect_the_official_split_file(name, seed):
    """With a split.csv (kvasir, fuseg, fetreg, isic, the 3D sets): the test ids are the file's
    test rows, the labeled and unlabeled ids its pool rows, and no unlabeled id is a test,
    validation or training id, whatever the count."""
    from tests.conftest import REQUIRE_DATA, USED_DATASETS

    spec = dataset_spec(name)
    table, real = official_table(name)
    assert real or not (REQUIRE_DATA and name in USED_DATASETS), f"{name}: no split.csv"
    ids = sorted(table)
    budget = min(
        int(spec.label_budgets[0]), len([i for i in ids if table[i] in spec.split.pool]) - 1
    )
    test_rows = {i for i in ids if table[i] in spec.split.test}
    pool_rows = {i for i in ids if table[i] in spec.split.pool}
    for count in (None, 0, 5):
        s = make_splits(ids, spec, budget, seed, 0.2, split_table=table, n_unlabeled=count)
        assert set(s.test) == test_rows and set(s.pool) == pool_rows, real
        labeled = set(s.train) | set(s.val)
        assert labeled <= pool_rows and len(labeled) == budget
        assert not set(s.unlabeled) & (test_rows | labeled)
        assert set(s.unlabeled) <= pool_rows
        if count is None:
            assert set(s.unlabeled) | labeled == pool_rows
        else:
            assert len(s.unlabeled) == count


def test_every_dataset_is_held_to_an_unlabeled_split_property():
    """No dataset escapes both property tests above (a new registry entry must fit one)."""
    assert set(TWO_D) | set(OFFICIAL) >= {
        n for n in dataset_names() if dataset_spec(n).dims == 2 or dataset_spec(n).split.get("pool")
    }
    assert set(dataset_names()) <= set(TWO_D) | set(OFFICIAL) | {"folder"}


def test_a_smaller_count_is_a_prefix_of_a_larger_one_and_labels_do_not_move():
    spec = dataset_spec("jsrt")
    few = make_splits(IDS, spec, 9, 3, 0.2, n_unlabeled=10)
    more = make_splits(IDS, spec, 9, 3, 0.2, n_unlabeled=50)
    none = make_splits(IDS, spec, 9, 3, 0.2, n_unlabeled=0)
    assert len(few.unlabeled) == 10 and set(few.unlabeled) < set(more.unlabeled)
    assert none.unlabeled == [] and (few.train, few.val) == (none.train, none.val)


@pytest.mark.parametrize(("count", "words"), [(-1, "0 or more"), (10_000, "the maximum is")])
def test_impossible_counts_are_named(count, words):
    with pytest.raises(GensegError, match=words):
        make_splits(IDS, dataset_spec("jsrt"), 9, 0, 0.2, n_unlabeled=count)


def folder_entry(root):
    from omegaconf import OmegaConf

    entry = dataset_spec("folder")
    return OmegaConf.merge(entry, {"root": str(root), "channels": 1})


def add_unlabeled(root, keys):
    from tests.conftest import write_pair

    for key in keys:  # an image without its mask, in unlabeled/
        write_pair(root / "tmp", key)
        (root / "unlabeled").mkdir(exist_ok=True)
        (root / "tmp" / "images" / f"{key}.png").rename(root / "unlabeled" / f"{key}.png")


def test_a_folders_unlabeled_images_join_the_pools_and_are_read_without_masks(folder_dataset):
    from genseg_cli.core.config import compose
    from genseg_cli.data.run_data import load_run_data, load_unlabeled
    from genseg_cli.data.spec import DataSpec

    add_unlabeled(folder_dataset, ["extra1", "extra2"])
    entry = folder_entry(folder_dataset)
    data = load_run_data(entry, folder_dataset.parent, 4, 0, 0.25, False, n_unlabeled=None)
    pool_unlabeled = len(data.splits.pool) - 4
    assert data.splits.unlabeled[-2:] == ["unlabeled/extra1", "unlabeled/extra2"]
    assert len(data.splits.unlabeled) == pool_unlabeled + 2
    capped = load_run_data(
        entry, folder_dataset.parent, 4, 0, 0.25, False, n_unlabeled=pool_unlabeled + 1
    )
    assert capped.splits.unlabeled[-1] == "unlabeled/extra1"  # the pool's come first
    cfg = compose(
        "train",
        ["dataset=folder", f"dataset.root={folder_dataset}", "profile=debug", "dataset.channels=1"],
    )
    samples = load_unlabeled(
        entry, folder_dataset.parent, data.splits.unlabeled, DataSpec.from_config(cfg)
    )
    assert len(samples) == len(data.splits.unlabeled) and not any(s.mask.any() for s in samples)


def test_unlabeled_images_with_a_test_id_are_refused(folder_dataset):
    from genseg_cli.data.run_data import load_run_data

    entry = folder_entry(folder_dataset)
    test_id = load_run_data(entry, folder_dataset.parent, 4, 0, 0.25, False).splits.test[0]
    add_unlabeled(folder_dataset, [test_id])
    with pytest.raises(GensegError, match=f"share an id with test images \\({test_id}\\)"):
        load_run_data(entry, folder_dataset.parent, 4, 0, 0.25, False, n_unlabeled=None)


def test_data_check_reports_a_folders_unlabeled_images(folder_dataset):
    from tests.stages.test_cli import genseg

    add_unlabeled(folder_dataset, ["extra1", "extra2", "extra3"])
    result = genseg("data", "check", "folder", "--root", str(folder_dataset))
    assert result.returncode == 0
    assert "3 unlabeled images in" in " ".join(result.stdout.split())


def test_a_negative_count_is_refused_also_with_a_folders_unlabeled_images(folder_dataset):
    from genseg_cli.data.run_data import load_run_data

    add_unlabeled(folder_dataset, ["extra1"])
    with pytest.raises(GensegError, match="0 or more"):
        load_run_data(
            folder_entry(folder_dataset), folder_dataset.parent, 4, 0, 0.25, False, n_unlabeled=-1
        )
