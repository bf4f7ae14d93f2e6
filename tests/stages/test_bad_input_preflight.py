"""The bad-input matrix of the method's keys: one row per pre-flight rule of `method.*`, `mlo.*`,
`ssl.*` and `generator.*` (`genseg_cli.engine.method_settings`), the combinations that would do
nothing, and the values a run used to meet only after it had made its folder.

Each row runs `genseg train` on a small user folder and must end before Hydra starts: exit 2, one
line naming the key, no traceback and no run folder (the runner of tests/stages/test_bad_input.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genseg_cli.core.config import compose, conf_dir
from genseg_cli.engine.method_settings import ABSENT_MEANS, METHOD_SETTINGS, exempt
from genseg_cli.engine.settings import SETTINGS
from genseg_cli.stages.train_checks import config_differences, known_keys
from tests.conftest import write_pair
from tests.stages.test_bad_input import ON_SET, TRAIN, Row, run_in_process

GENSEG = ("method=genseg", "mlo.arch_every=2")
FIXMATCH = ("ssl=fixmatch",)
# where each key exists: the choices a row adds before its bad value
CONTEXT = {
    "mlo.": GENSEG,
    "ssl.": FIXMATCH,
    "ssl.dims": ("ssl=cross_teaching",),
    "ssl.teacher_run": ("ssl=self_training",),
    "ssl.review_weight": ("ssl=mcf",),
    "ssl.temperature": ("ssl=mcf",),
    "ssl.view_difference": ("ssl=dct",),
    "ssl.epsilon": ("ssl=dct",),
    "generator.model.latent": ("method=separate", "generator=wgan"),
    "generator.critic_steps": ("method=separate", "generator=wgan"),
    "generator.gp_weight": ("method=separate", "generator=wgan"),
    "method.augment_real": ("method=baseline_noaug",),
    "method.": ("method=genseg",),
    "generator.width": ("method=separate", "generator=template"),
    "generator.depth": ("method=separate", "generator=template"),
    "generator.": ("method=separate",),
    "optim.optimizer.momentum": ("optim=rmsprop",),
}
# a value each key's rule refuses
BAD = {
    "mlo.upper_precision": "bf16",
    "mlo.hypergrad": "exact",
    "mlo.unroll_steps": "0",
    "mlo.fd_radius": "0",
    "mlo.xi": "-0.01",
    "mlo.arch_every": "0",
    "mlo.arch_lr": "0",
    "mlo.arch_weight_decay": "-1",
    "mlo.generator_weights": "maybe",
    "mlo.generator_lr": "-2e-5",
    "mlo.learn_synthetic_weight": "2",
    "mlo.synthetic_weight_lr": "0",
    "mlo.synthetic_weight_max": "0",
    "mlo.pseudo_weight_lr": "0",
    "mlo.pseudo_weight_max": "0",
    "mlo.sample_weights": "all",
    "mlo.sample_weights_radius": "0",
    "mlo.trust_region": "-1",
    "mlo.levers": "appearance",
    "mlo.lever_lr": "0",
    "mlo.appearance.mix": "1",
    "mlo.appearance.gamma": "0",
    "mlo.appearance.contrast": "-0.1",
    "mlo.appearance.hidden": "0",
    "mlo.appearance.kernel": "1.5",
    "mlo.mask_warp.scale": "0",
    "mlo.mask_warp.rotate": "-0.1",
    "mlo.mask_warp.translate": "0",
    "mlo.mask_warp.elastic": "0",
    "mlo.mask_warp.grid": "1",
    "mlo.template_lever.spread": "0",
    "ssl.weight": "0",
    "ssl.ramp_up": "1.5",
    "ssl.total_steps": "0",
    "ssl.threshold": "1.1",
    "ssl.pseudo_labels": "teacher",
    "ssl.teacher_run": "''",
    "ssl.ema_decay": "1.5",
    "ssl.cutmix": "-0.5",
    "ssl.dice_weight": "-1",
    "ssl.dims": "4",
    "ssl.perturbation.contrast": "-0.4",
    "ssl.perturbation.brightness": "-0.4",
    "ssl.perturbation.gamma": "-0.4",
    "ssl.perturbation.blur": "2",
    "ssl.perturbation.noise": "-1",
    "ssl.perturbation.p": "1.5",
    "method.name": "''",
    "method.augment_real": "sometimes",
    "method.loss.bce_weight": "-1",
    "method.loss.dice_weight": "-1",
    "method.synthetic_weight": "0",
    "method.synthetic_jitter.brightness": "{brightness:-1,contrast:0.2,p:0.5}",
    "method.synthetic_jitter.contrast": "{brightness:0.2,contrast:-1,p:0.5}",
    "method.synthetic_jitter.p": "{brightness:0.2,contrast:0.2,p:2}",
    "method.pretrain.steps": "-1",
    "method.pretrain.lr": "0",
    "method.pretrain.cache_dir": "''",
    "method.end_to_end_lr": "-1",
    "generator.name": "''",
    "generator.model.base_width": "0",
    "generator.model.max_width": "0",
    "generator.model.bottleneck_size": "0",
    "generator.model.norm": "layer",
    "generator.model.dropout": "1.5",
    "generator.model.up_kernels": "[4,5]",
    "generator.model.down_kernels": "[]",
    "generator.model.arch_temperature": "0",
    "generator.model.search_down": "yes",
    "generator.discriminator.base_width": "0",
    "generator.discriminator.n_layers": "0",
    "generator.discriminator.norm": "layer",
    "generator.gan_loss": "wgan",
    "generator.lambda_l1": "-100",
    "generator.lambda_kl": "-0.01",
    "generator.model.style_dim": "-8",
    "generator.model.balanced_phases": "maybe",
    "generator.model.skips_dropped": "-1",
    "generator.lambda_fm": "-1",
    "generator.unlabeled_realism": "-1",
    "generator.skip_augment": "Affine",
    "generator.model.upsample_ops": "[nearest]",
    "generator.pseudo_pairs.weight": "-1",
    "generator.pseudo_pairs.threshold": "1.5",
    "generator.pseudo_pairs.learn_weight": "maybe",
    "generator.pseudo_pairs.rule": "median",
    "generator.grid_score": "sometimes",
    "generator.width": "0",
    "generator.depth": "0",
    "generator.model.latent": "0",
    "generator.critic_steps": "0",
    "generator.gp_weight": "-10",
    "ssl.review_weight": "-0.5",
    "ssl.temperature": "0",
    "ssl.view_difference": "-1",
    "ssl.epsilon": "0",
    "dataset.channels": "2",
    "optim.optimizer.lr": "-1",
    "optim.optimizer.weight_decay": "-1",
    "optim.optimizer.momentum": "1.5",
}


def context(key: str) -> tuple[str, ...]:
    matches = [k for k in CONTEXT if key == k or (k.endswith(".") and key.startswith(k))]
    return CONTEXT[max(matches, key=len)] if matches else ()


def rule_row(key: str) -> Row:
    value = BAD[key]
    if key.startswith("method.synthetic_jitter."):  # null by default: the whole node is given
        setting, words = f"method.synthetic_jitter={value}", f"{key}="
    else:
        setting, words = f"{key}={value}", f"{key}="
    extra = tuple(o for o in context(key) if o.split("=")[0] != key)
    return Row(f"rule-{key}", f"a value {key} refuses", (*TRAIN, *ON_SET, *extra, setting), 2,
               (words,))  # fmt: skip


COMBINATIONS = [
    Row("fd-unrolled", "several unrolled steps with finite differences",
        (*TRAIN, *ON_SET, *GENSEG, "mlo.hypergrad=finite_difference", "mlo.unroll_steps=3"), 2,
        ("mlo.unroll_steps=3 needs mlo.hypergrad=second_order",)),
    Row("fd-upper-precision", "an upper precision finite differences ignore",
        (*TRAIN, *ON_SET, *GENSEG, "mlo.hypergrad=finite_difference", "mlo.upper_precision=auto"),
        2, ("mlo.upper_precision=auto has no effect",)),
    Row("trust-region-alone", "a trust region without the generator's weights",
        (*TRAIN, *ON_SET, *GENSEG, "mlo.trust_region=0.5"), 2,
        ("mlo.trust_region=0.5", "mlo.generator_weights=true")),
    Row("learned-weight-at-max", "a learned lambda that starts at its maximum",
        (*TRAIN, *ON_SET, *GENSEG, "mlo.learn_synthetic_weight=true",
         "method.synthetic_weight=2"), 2, ("method.synthetic_weight=2", "synthetic_weight_max")),
    Row("unknown-lever", "a lever that does not exist",
        (*TRAIN, *ON_SET, *GENSEG, "mlo.levers=[colour]"), 2, ("mlo.levers names 'colour'",)),
    Row("mask-warp-3d", "the 2D mask warp on volumes",
        (*TRAIN, "dataset=hippocampus", *GENSEG, "mlo.levers=[mask_warp]"), 2,
        ("mlo.levers: mask_warp supports 2D data only",)),
    Row("nothing-to-learn", "genseg with a generator without architecture weights",
        (*TRAIN, *ON_SET, *GENSEG, "generator=pix2pix_fixed"), 2,
        ("gives the upper level nothing to learn", "mlo.learn_synthetic_weight=true")),
    Row("no-loss", "both loss terms off", (*TRAIN, *ON_SET, "method.loss.bce_weight=0",
        "method.loss.dice_weight=0"), 2, ("method.loss.bce_weight=0",)),
    Row("narrow-max-width", "a generator's max width below its base width",
        (*TRAIN, *ON_SET, "method=separate", "generator.model.max_width=4"), 2,
        ("generator.model.max_width=4 is below generator.model.base_width=8",)),
    Row("student-teacher-run", "pseudo labels from a run without the run",
        (*TRAIN, *ON_SET, *FIXMATCH, "ssl.pseudo_labels=run"), 2,
        ("ssl.pseudo_labels=run", "ssl.teacher_run=RUN_DIR")),
    Row("pseudo-pairs-no-teacher", "pseudo-labelled pairs without a teacher",
        (*TRAIN, *ON_SET, "method=separate", "generator.pseudo_pairs.weight=1"), 2,
        ("generator.pseudo_pairs.weight=1 needs a teacher", "ssl=self_training")),
    Row("pseudo-pairs-ema-separate", "an EMA teacher's pairs for a generator that stops learning",
        (*TRAIN, *ON_SET, "method=separate", *FIXMATCH, "generator.pseudo_pairs.weight=1"), 2,
        ("generator.pseudo_pairs.weight=1: an EMA teacher", "method=genseg")),
    Row("pseudo-weight-learned-separate", "a learned pseudo-pair weight without an upper level",
        (*TRAIN, *ON_SET, "method=separate", *FIXMATCH, "generator.pseudo_pairs.weight=0.5",
         "generator.pseudo_pairs.learn_weight=true"), 2,
        ("generator.pseudo_pairs.learn_weight=true: only method=genseg", "method=genseg")),
    Row("pseudo-weight-learned-no-pairs", "a learned pseudo-pair weight without pseudo pairs",
        (*TRAIN, *ON_SET, *GENSEG, "generator.pseudo_pairs.learn_weight=true"), 2,
        ("generator.pseudo_pairs.learn_weight=true needs pseudo pairs",
         "generator.pseudo_pairs.weight above 0")),
    Row("pseudo-weight-learned-at-max", "a learned pseudo-pair weight that starts at its maximum",
        (*TRAIN, *ON_SET, *GENSEG, *FIXMATCH, "generator.pseudo_pairs.weight=2",
         "generator.pseudo_pairs.learn_weight=true"), 2,
        ("generator.pseudo_pairs.weight=2 must lie below mlo.pseudo_weight_max=2",)),
    Row("pseudo-weight-learned-style", "a learned pseudo-pair weight with an appearance code",
        (*TRAIN, *ON_SET, *GENSEG, *FIXMATCH, "generator.pseudo_pairs.weight=0.5",
         "generator.pseudo_pairs.learn_weight=true", "generator.model.style_dim=8"), 2,
        ("generator.pseudo_pairs.learn_weight=true: the weight's hypergradient",
         "generator.model.style_dim=0")),
    Row("genseg-wgan", "genseg with a generator that makes its own masks",
        (*TRAIN, *ON_SET, *GENSEG, "generator=wgan"), 2,
        ("method=genseg needs a mask-conditioned generator", "method=separate generator=wgan")),
    Row("wgan-3d", "a 2D generator on volumes",
        (*TRAIN, "dataset=hippocampus", "method=separate", "generator=wgan"), 2,
        ("generator=wgan makes 2D data", "generator=searchable")),
    # values a run met only after it had made its folder
    Row("channels-2", "two image channels", (*TRAIN, *ON_SET, "dataset.channels=2"), 2,
        ("dataset.channels=2 must be one of 1, 3",)),
    Row("negative-lr", "a negative learning rate", (*TRAIN, *ON_SET, "optim.optimizer.lr=-1"),
        2, ("optim.optimizer.lr=-1 must be above 0",)),
    Row("arch-every-0", "an upper step every 0 steps",
        (*TRAIN, *ON_SET, "method=genseg", "mlo.arch_every=0"), 2,
        ("mlo.arch_every=0 must be at least 1",)),
    Row("genseg-image-size-100", "a model size the generator cannot halve to its bottleneck",
        (*TRAIN, *ON_SET, *GENSEG, "data.image_size=100"), 2,
        ("data.image_size=100 does not fit the generator", "e.g. data.image_size=128")),
    Row("encoder-weights-offline", "ImageNet encoder weights on a machine without the hub",
        (*TRAIN, *ON_SET, "backbone.encoder_weights=imagenet"), 2,
        ("backbone.encoder_weights=imagenet", "cannot be reached", "encoder_weights=null"),
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": "{tmp}/hf"}),
    Row("keep-last-not-boolean", "keeping last.pt of a finished run: a switch, not a word",
        (*TRAIN, *ON_SET, "trainer.keep_last=sometimes"), 2,
        ("trainer.keep_last=sometimes must be one of", "trainer.keep_last=true")),
]  # fmt: skip

ROWS = [rule_row(key) for key in BAD] + COMBINATIONS


@pytest.fixture(scope="module")
def good_set(tmp_path_factory) -> Path:
    """The good user folder the rows train on (as in tests/stages/test_bad_input.py)."""
    root = tmp_path_factory.mktemp("data") / "my_set"
    for i in range(12):
        write_pair(root, f"case{i:02d}")
    return root


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_preflight(row: Row, good_set: Path, tmp_path, capsys, monkeypatch):
    out = tmp_path / "outputs"

    def fill(text: str) -> str:  # placeholders only: braces of Hydra dicts stay
        return text.replace("{set}", str(good_set)).replace("{tmp}", str(tmp_path))

    monkeypatch.chdir(tmp_path)
    for key, value in {"GENSEG_OUTPUT_DIR": str(out), **row.env}.items():
        monkeypatch.setenv(key, fill(value))
    code, text = run_in_process([fill(a) for a in row.args], capsys, monkeypatch)
    assert code == row.code, text
    assert len(text.strip().splitlines()) == 1, text  # one line
    said = " ".join(text.split())
    for words in row.words:
        assert words in said, said
    assert "Traceback" not in said
    assert not (out / "runs").exists()  # no run folder left behind


CHOICES = [
    [],
    ["method=genseg"],
    ["method=baseline_noaug"],
    ["optim=rmsprop"],
    ["method=separate", "generator=template"],
    ["method=genseg", "generator=pix2pix_fixed"],
    ["method=separate", "generator=wgan"],
    *([f"ssl={p.stem}"] for p in sorted((conf_dir() / "ssl").glob("*.yaml"))),
]


def test_every_key_of_the_method_groups_has_a_rule_and_a_row():
    """Each value key of method, mlo, ssl and generator (under every choice) has a pre-flight
    rule, or is named in EXEMPT with what checks it instead; each rule has a row above."""
    keys: set[str] = set()
    for choice in CHOICES:
        cfg = compose("train", ["profile=debug", *choice])
        keys |= known_keys(OmegaConf.to_container(cfg, resolve=False))
    leaves = {k for k in keys if not any(o.startswith(f"{k}.") for o in keys)}
    unchecked = sorted(
        k
        for k in leaves
        if k.startswith(("mlo.", "ssl.", "method.", "generator."))
        and not exempt(k)
        and k not in SETTINGS
        and k.rsplit(".", 1)[0] not in SETTINGS  # items of a checked list
    )
    assert not unchecked, unchecked
    assert set(BAD) == set(METHOD_SETTINGS)


def test_a_saved_run_without_the_generators_newer_keys_resumes_at_their_off_values():
    """Keys a saved config lacks count as unchanged at the value that trains the run as it was
    (`ABSENT_MEANS`), and as a difference at any other value."""
    current = compose("train", ["profile=debug"])
    saved = OmegaConf.create(OmegaConf.to_container(current, resolve=True))
    for key in ABSENT_MEANS:
        parent, _, leaf = key.rpartition(".")
        OmegaConf.select(saved, parent).pop(leaf)
    assert config_differences(saved, current) == []
    current.generator.pseudo_pairs.weight = 1.0
    assert config_differences(saved, current) == ["generator.pseudo_pairs.weight"]
    # a saved run with pseudo pairs on and no rule chose its images by the rule `mean`
    saved.generator.pseudo_pairs.weight = 1.0
    assert config_differences(saved, current) == ["generator.pseudo_pairs.rule"]
    current.generator.pseudo_pairs.rule = "mean"
    assert config_differences(saved, current) == []
