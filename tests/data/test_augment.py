"""Augment groups from config: a generator's pairs may leave out some of the run's transforms."""

import pytest

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.data.augment import without_transforms

AFFINE = "albumentations.Affine"
KEY = "generator.skip_augment"


def targets(node, key="pipeline"):
    return [t._target_ for t in node[key].transforms]


def test_named_transforms_are_left_out_of_a_copy():
    augment = compose("train", ["augment=standard"]).augment
    trimmed = without_transforms(augment, [AFFINE], KEY)
    assert AFFINE in targets(augment)  # the run's own group is untouched
    assert targets(trimmed) == [t for t in targets(augment) if t != AFFINE]
    assert targets(trimmed, "volume_pipeline") == targets(augment, "volume_pipeline")


def test_nothing_to_leave_out_gives_the_group_itself():
    augment = compose("train", ["augment=standard"]).augment
    assert without_transforms(augment, [], KEY) is augment
    none = compose("train", ["augment=none"]).augment
    assert without_transforms(none, [AFFINE], KEY) is none  # no pipeline: nothing to leave out


def test_a_name_the_pipeline_does_not_hold_is_refused_with_the_fix():
    augment = compose("train", ["augment=standard"]).augment
    with pytest.raises(GensegError, match="albumentations.Afine, which augment=standard") as err:
        without_transforms(augment, ["albumentations.Afine"], KEY)
    assert "albumentations.HorizontalFlip" in str(err.value)  # what it could have named
    assert "generator.skip_augment=[]" in str(err.value)
