"""Pseudo-labelled pairs for the generator: the confidence rule keeps and drops images as set,
the pairs reach the generator's update (a twin step without them ends elsewhere), a trained
teacher's pairs join the pre-training, only the split's unlabeled images are ever labelled, and
the grid score lands in metrics.json when asked for."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from genseg_cli.core.config import compose
from genseg_cli.core.errors import GensegError
from genseg_cli.core.runtime import resolve_runtime
from genseg_cli.engine import step_batches
from genseg_cli.engine.loop import build_method, run_training
from genseg_cli.engine.method_settings import PSEUDO_RULES
from genseg_cli.generators.pseudo_pairs import RULES, PseudoPairs, confident
from genseg_cli.methods.synthetic import cache_settings
from tests.stages.test_cli import genseg

CPU = resolve_runtime("cpu", "fp32", False)


class Constant(nn.Module):
    """A teacher whose foreground probability is `p[i]` on every pixel of image i."""

    def __init__(self, p: list[float]) -> None:
        super().__init__()
        self.p = torch.tensor(p)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.p).view(-1, 1, 1, 1).expand(-1, 1, *images.shape[2:]).clone()


def config(*overrides: str):
    return compose("train", ["profile=debug", "data.image_size=32", "trainer.precision=fp32",
                             *overrides])  # fmt: skip


def test_the_confidence_rule_keeps_and_drops_images_as_set():
    probs = torch.tensor([0.99, 0.6, 0.02, 0.5]).view(4, 1, 1, 1).expand(4, 1, 8, 8)
    masks, score, keep = confident(probs, 0.9, "mean")
    assert keep.tolist() == [True, False, True, False]
    assert score.tolist() == pytest.approx([0.99, 0.6, 0.98, 0.5])
    assert masks[:, 0, 0, 0].tolist() == [1.0, 1.0, 0.0, 0.0]
    pairs = PseudoPairs(Constant([0.99, 0.6, 0.02, 0.5]), True, 0.55, 0.5, CPU, "mean")
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 8, 8)
    kept, kept_masks, _ = pairs.label(images)
    assert kept[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]  # 0.6 >= 0.55 joins, 0.5 does not
    assert (pairs.seen, pairs.kept) == (4, 3)
    real_masks, real_images = torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)
    pairs.label = lambda pool: (kept, kept_masks, torch.ones(4))
    masks, joined, weights, _ = pairs.join(real_masks, real_images, images, weighs=True)
    assert masks.shape[0] == joined.shape[0] == 5
    assert weights.tolist() == [1.0, 1.0, 0.5, 0.5, 0.5]


def test_the_foreground_rule_judges_what_the_teacher_found_not_the_background():
    # a small lesion found with doubt in a sure background: the mean over all pixels is high,
    # the mean over the lesion and its ring is not; an image where nothing was found scores 0
    probs = torch.full((3, 1, 16, 16), 0.01)
    probs[0, 0, 6:10, 6:10] = 0.55  # found, unsure
    probs[1, 0, 6:10, 6:10] = 0.99  # found, sure
    _, mean, kept_by_mean = confident(probs, 0.9, "mean")
    _, fg, kept_by_fg = confident(probs, 0.9, "foreground")
    assert kept_by_mean.tolist() == [True, True, True]
    assert kept_by_fg.tolist() == [False, True, False]
    assert fg[0] == pytest.approx((16 * 0.55 + 20 * 0.99) / 36) and fg[2] == 0.0  # 4x4 + ring
    assert mean[0] > 0.9
    labels = torch.zeros(1, 3, 8, 8)  # a label map: any class but background is found
    labels[0, 0] = 0.9
    labels[0, 0, 2:4, 2:4], labels[0, 2, 2:4, 2:4] = 0.3, 0.6
    labels[0, 1] = 1 - labels[0, 0] - labels[0, 2]
    _, score, _ = confident(labels, 0.9, "foreground")
    assert 0.6 < score[0] < 0.9
    volume = torch.full((1, 1, 4, 8, 8), 0.01)
    volume[0, 0, 1:3, 3:5, 3:5] = 0.7
    _, score, _ = confident(volume, 0.9, "foreground")  # 8 voxels at 0.7 in a 4x4x4 ring
    assert score[0] == pytest.approx((8 * 0.7 + (4 * 4 * 4 - 8) * 0.99) / 64)
    with pytest.raises(ValueError, match="foreground"):
        confident(probs, 0.9, "median")
    assert PSEUDO_RULES == RULES  # what pre-flight accepts
    pairs = PseudoPairs(Constant([0.99, 0.02]), True, 0.9, 1.0, CPU)  # the default rule
    kept, _, _ = pairs.label(torch.zeros(2, 1, 8, 8))
    assert kept.shape[0] == 1 and pairs.describe()["rule"] == "foreground"


def generator_after_one_update(weight: float, threshold: float = 0.0) -> list[torch.Tensor]:
    cfg = config("method=genseg", "ssl=fixmatch", f"generator.pseudo_pairs.weight={weight}",
                 f"generator.pseudo_pairs.threshold={threshold}")  # fmt: skip
    torch.manual_seed(0)
    method = build_method(cfg, CPU)
    gen = torch.Generator().manual_seed(1)
    masks = (torch.rand(2, 1, 32, 32, generator=gen) > 0.5).float()
    images = torch.rand(2, 1, 32, 32, generator=gen) * 2 - 1
    pool = torch.rand(2, 1, 32, 32, generator=gen) * 2 - 1
    torch.manual_seed(2)  # dropout's draws
    fake = method.synthesise(masks)
    logs = method.generator_update(masks, images, fake, {"unlabeled_image": pool})
    assert ("pseudo/kept" in logs) == (weight > 0)
    return [p.detach().clone() for p in method.generator.parameters()]


def test_the_pseudo_pairs_reach_the_generators_update():
    without = generator_after_one_update(0.0)
    again = generator_after_one_update(0.0)
    assert all(torch.equal(a, b) for a, b in zip(without, again, strict=True))  # twins agree
    with_pairs = generator_after_one_update(1.0)
    assert any(not torch.equal(a, b) for a, b in zip(without, with_pairs, strict=True))
    # their weight counts, and a rule no image passes leaves the update as it was
    lighter = generator_after_one_update(0.25)
    assert any(not torch.equal(a, b) for a, b in zip(with_pairs, lighter, strict=True))
    none_kept = generator_after_one_update(1.0, threshold=1.0)
    assert all(torch.equal(a, b) for a, b in zip(without, none_kept, strict=True))


def test_settings_under_which_the_pairs_would_reach_nothing_are_refused():
    with pytest.raises(GensegError, match="needs a teacher"):
        build_method(config("method=genseg", "generator.pseudo_pairs.weight=1"), CPU)
    with pytest.raises(GensegError, match="EMA teacher"):
        build_method(config("method=separate", "ssl=fixmatch", "generator.pseudo_pairs.weight=1"),
                     CPU)  # fmt: skip
    with pytest.raises(GensegError, match="cannot weigh"):
        template = ("generator=template", "mlo.learn_synthetic_weight=true")
        build_method(
            config("method=genseg", "ssl=fixmatch", *template, "+generator.pseudo_pairs.weight=.5"),
            CPU,
        )
    with pytest.raises(GensegError, match="generator=template cannot differentiate its step"):
        learned = ("+generator.pseudo_pairs.weight=1", "+generator.pseudo_pairs.learn_weight=true")
        build_method(config("method=genseg", "ssl=fixmatch", *template, *learned), CPU)


def test_options_at_their_off_values_leave_the_cache_key_as_it_was():
    plain = cache_settings(config().generator)
    assert {"grid_score", "pseudo_pairs"}.isdisjoint(plain) and "upsample_ops" not in plain["model"]
    on = cache_settings(config("generator.model.upsample_ops=[transposed,bilinear]",
                               "generator.pseudo_pairs.weight=1").generator)  # fmt: skip
    assert on["model"]["upsample_ops"] == ["transposed", "bilinear"] and "pseudo_pairs" in on
    # the upper level learns the weight after the pre-training: the cached generator is the same
    learned = config(
        "generator.model.upsample_ops=[transposed,bilinear]",
        "generator.pseudo_pairs.weight=1",
        "generator.pseudo_pairs.learn_weight=true",
    )
    assert cache_settings(learned.generator) == on


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    from tests.conftest import DATA_DIR

    if not (DATA_DIR / "jsrt").is_dir():
        pytest.skip("real datasets not found")
    folder = tmp_path_factory.mktemp("teacher") / "run"
    done = genseg(
        "train", "profile=debug", "data.image_size=32", "trainer.precision=fp32",
        "trainer.steps=4", "trainer.progress=false", f"paths.data_dir={DATA_DIR}",
        f"hydra.run.dir={folder}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder


def test_a_trained_teachers_pairs_join_pre_training_from_unlabeled_ids_only(
    teacher_run, data_dir, tmp_path, monkeypatch
):
    loaded: list[list[str]] = []
    load = step_batches.load_unlabeled

    def spy(entry, folder, ids, spec):
        loaded.append(list(ids))
        return load(entry, folder, ids, spec)

    monkeypatch.setattr(step_batches, "load_unlabeled", spy)
    labelled: list[int] = []
    label = PseudoPairs.label

    def counting(self, images):
        labelled.append(images.shape[0])
        return label(self, images)

    monkeypatch.setattr(PseudoPairs, "label", counting)
    cfg = config(
        "method=separate", "ssl=self_training", f"ssl.teacher_run={teacher_run}",
        "n_unlabeled=6", "generator.pseudo_pairs.weight=0.5", "generator.pseudo_pairs.threshold=0",
        "generator.grid_score=true", "method.pretrain.steps=3", "method.pretrain.cache_dir=null",
        "trainer.steps=2", "evaluation.tstr_steps=0", f"paths.data_dir={data_dir}",
    )  # fmt: skip
    metrics = run_training(cfg, tmp_path)
    splits = json.loads((tmp_path / "splits.json").read_text())
    assert labelled == [2, 2, 2]  # one pool batch per pre-training step
    assert loaded and all(set(ids) == set(splits["unlabeled"]) for ids in loaded)
    assert not set(splits["unlabeled"]) & set(splits["test"])
    pseudo = metrics["generator"]["pseudo_pairs"]
    assert pseudo["seen"] == 6 and pseudo["kept"] == 6 and pseudo["teacher"] == "trained run"
    grid = metrics["generator"]["grid_score"]
    assert set(grid) == {"pretrained", "end", "real"}
    assert all(isinstance(v, float) for v in grid.values())
