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
