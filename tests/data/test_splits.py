import pytest
from omegaconf import OmegaConf

from genseg_cli.core.errors import GensegError
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.splits import make_splits, n_validation

IDS = [f"img{i:03d}" for i in range(247)]


@pytest.mark.parametrize(("budget", "n_val"), [(9, 2), (40, 8), (100, 20), (35, 7), (2, 1)])
def test_validation_share_matches_the_paper(budget, n_val):
    assert n_validation(budget, 0.2) == n_val


def test_splits_are_deterministic_disjoint_and_sized():
    spec = dataset_spec("jsrt")
    a = make_splits(IDS, spec, n_labeled=9, seed=0, val_fraction=0.2)
    b = make_splits(list(reversed(IDS)), spec, n_labeled=9, seed=0, val_fraction=0.2)
    assert a == b  # listing order does not matter
    assert (len(a.train), len(a.val), len(a.test)) == (7, 2, 62)
    assert not set(a.train) & set(a.val)
    assert not (set(a.train) | set(a.val)) & set(a.test)
    assert set(a.pool) | set(a.test) == set(IDS)


def test_test_split_is_seed_and_budget_independent_labeled_sets_are_not():
    spec = dataset_spec("jsrt")
    s0 = make_splits(IDS, spec, 9, seed=0, val_fraction=0.2)
    s1 = make_splits(IDS, spec, 35, seed=1, val_fraction=0.2)
    assert s0.test == s1.test
    assert s0.train != make_splits(IDS, spec, 9, seed=1, val_fraction=0.2).train


def test_budgets_are_nested_for_one_seed():
    spec = dataset_spec("jsrt")
    small = make_splits(IDS, spec, 9, seed=2, val_fraction=0.2)
    large = make_splits(IDS, spec, 175, seed=2, val_fraction=0.2)
    assert set(small.train) | set(small.val) <= set(large.train) | set(large.val)


def test_official_split_is_honoured():
    spec = dataset_spec("kvasir")
    table = {i: ("val" if i.endswith(("0", "5")) else "train") for i in IDS}
    s = make_splits(IDS, spec, 40, seed=0, val_fraction=0.2, split_table=table)
    assert set(s.test) == {i for i, v in table.items() if v == "val"}
    assert all(table[i] == "train" for i in s.train + s.val)


def test_official_split_missing_ids_are_named():
    spec = dataset_spec("kvasir")
    with pytest.raises(GensegError, match="no row for 1 ids.*img246"):
        make_splits(IDS, spec, 40, 0, 0.2, split_table={i: "train" for i in IDS[:-1]})


def test_official_split_required_when_no_fraction():
    spec = dataset_spec("kvasir")
    with pytest.raises(GensegError, match="split.csv, which is missing"):
        make_splits(IDS, spec, 40, 0, 0.2, split_table=None)


@pytest.mark.parametrize("n", [0, 1])
def test_budget_too_small(n):
    with pytest.raises(GensegError, match=f"n_labeled={n} is too small"):
        make_splits(IDS, dataset_spec("jsrt"), n, 0, 0.2)


def test_budget_too_large_states_the_maximum():
    spec = OmegaConf.merge(dataset_spec("jsrt"), {"split": {"test_fraction": 0.25}})
    with pytest.raises(GensegError, match="n_labeled=500 exceeds .* the maximum is 185"):
        make_splits(IDS, spec, 500, 0, 0.2)
