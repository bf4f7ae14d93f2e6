"""What the method's keys accept (`method.*`, `mlo.*`, `ssl.*`, `generator.*`, and the data and
optimiser keys the methods build from), and the combinations that would run without effect.

`METHOD_SETTINGS` joins `genseg_cli.engine.settings.SETTINGS`: each key's type and range, checked
on each command-line value and on the composed config. `check_combinations(cfg)` then refuses
values that are each valid but together do nothing or cannot be built (an upper step that never
runs, a trust region without the weights it holds, an image size the generator cannot halve).
`EXEMPT` names the keys of these groups that have no rule here, and why; a test holds every key
of every choice to one or the other.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.errors import GensegError
from genseg_cli.engine.generator_checks import (
    check_generator_size,
    check_pseudo_pairs,
    check_recipe,
)
from genseg_cli.engine.rules import (
    Rule,
    at_least,
    even_kernel,
    flag,
    list_of,
    number,
    one_of,
    text,
    whole,
)

UNIT = {"closed": True}  # [0, 1]
GAN_LOSSES = ("lsgan", "vanilla")
NORMS = ("batch", "instance")
PSEUDO_RULES = ("foreground", "mean")  # genseg_cli.generators.pseudo_pairs.RULES, without torch
log = logging.getLogger(__name__)


def _word(value: object) -> str | None:
    return None if isinstance(value, str) and value else "must be a name"


def _upsample_ops(value: object) -> str | None:
    """The decoder's candidate kinds: transposed among them (the paper's search space)."""
    problem = list_of(one_of("transposed", "nearest", "bilinear"), True, True)(value)
    if problem is None and "transposed" not in list(value):
        return "must list transposed (the other kinds join it)"
    return problem


MLO: dict[str, Rule] = {
    "mlo.upper_precision": Rule(one_of("fp32", "auto"), "mlo.upper_precision=fp32"),
    "mlo.hypergrad": Rule(
        one_of("second_order", "finite_difference"), "mlo.hypergrad=second_order"
    ),
    "mlo.unroll_steps": Rule(whole(1), "mlo.unroll_steps=1 (0 gives a zero hypergradient)"),
    "mlo.fd_radius": Rule(number(0.0), "mlo.fd_radius=1e-3"),
    "mlo.xi": Rule(number(0.0), "mlo.xi=0.01 (the look-ahead step size)"),
    "mlo.arch_every": Rule(whole(1), "mlo.arch_every=10 (an upper step every 10 steps)"),
    "mlo.arch_lr": Rule(number(0.0), "mlo.arch_lr=1e-2"),
    "mlo.arch_weight_decay": Rule(at_least(0.0), "mlo.arch_weight_decay=1e-3"),
    "mlo.generator_weights": Rule(flag(), "mlo.generator_weights=true"),
    "mlo.generator_lr": Rule(number(0.0), "mlo.generator_lr=2e-5"),
    "mlo.learn_synthetic_weight": Rule(flag(), "mlo.learn_synthetic_weight=true"),
    "mlo.synthetic_weight_lr": Rule(number(0.0), "mlo.synthetic_weight_lr=5e-2"),
    "mlo.synthetic_weight_max": Rule(number(0.0), "mlo.synthetic_weight_max=2.0"),
    "mlo.pseudo_weight_lr": Rule(number(0.0), "mlo.pseudo_weight_lr=5e-2"),
    "mlo.pseudo_weight_max": Rule(number(0.0), "mlo.pseudo_weight_max=2.0"),
    "mlo.sample_weights": Rule(
        one_of("none", "difference", "exact"), "mlo.sample_weights=difference"
    ),
    "mlo.sample_weights_radius": Rule(number(0.0), "mlo.sample_weights_radius=1e-3"),
    "mlo.trust_region": Rule(at_least(0.0), "mlo.trust_region=0.1 (0: off)"),
    "mlo.levers": Rule(list_of(_word, unique=True), "mlo.levers=[appearance,mask_warp]"),
    "mlo.lever_lr": Rule(number(0.0), "mlo.lever_lr=1e-2"),
    "mlo.appearance.mix": Rule(number(0.0, 1.0), "mlo.appearance.mix=0.2"),
    "mlo.appearance.gamma": Rule(number(0.0), "mlo.appearance.gamma=0.1"),
    "mlo.appearance.contrast": Rule(number(0.0), "mlo.appearance.contrast=0.1"),
    "mlo.appearance.hidden": Rule(whole(1), "mlo.appearance.hidden=8"),
    "mlo.appearance.kernel": Rule(whole(1), "mlo.appearance.kernel=3"),
    "mlo.mask_warp.scale": Rule(number(0.0), "mlo.mask_warp.scale=0.05"),
    "mlo.mask_warp.rotate": Rule(number(0.0), "mlo.mask_warp.rotate=0.1"),
    "mlo.mask_warp.translate": Rule(number(0.0), "mlo.mask_warp.translate=0.05"),
    "mlo.mask_warp.elastic": Rule(number(0.0), "mlo.mask_warp.elastic=0.02"),
    "mlo.mask_warp.grid": Rule(whole(2), "mlo.mask_warp.grid=6"),
    "mlo.template_lever.spread": Rule(number(0.0), "mlo.template_lever.spread=0.05"),
}

PERTURBATION = {
    "contrast": at_least(0.0),
    "brightness": at_least(0.0),
    "gamma": at_least(0.0),
    "blur": number(0.0, 1.0, **UNIT),
    "noise": at_least(0.0),
    "p": number(0.0, 1.0, **UNIT),
}

SSL: dict[str, Rule] = {
    # absent with ssl=none; 0 would train the objective's networks for nothing
    "ssl.weight": Rule(number(0.0, optional=True), "ssl.weight=1.0"),
    "ssl.ramp_up": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.ramp_up=0.2"),
    "ssl.total_steps": Rule(whole(1), "ssl.total_steps=${trainer.steps}"),
    "ssl.threshold": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.threshold=0.9"),
    "ssl.pseudo_labels": Rule(one_of("ema", "student", "run"), "ssl.pseudo_labels=ema"),
    "ssl.teacher_run": Rule(text(), "ssl.teacher_run=RUN_DIR"),
    "ssl.ema_decay": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.ema_decay=0.99"),
    "ssl.cutmix": Rule(number(0.0, 1.0, optional=True, closed=True), "ssl.cutmix=0.5"),
    "ssl.dice_weight": Rule(at_least(0.0, optional=True), "ssl.dice_weight=1 (0: off)"),
    "ssl.dims": Rule(one_of(2, 3), "ssl.dims=${dataset.dims}"),
    "ssl.review_weight": Rule(at_least(0.0), "ssl.review_weight=0.5 (0: no review)"),
    "ssl.temperature": Rule(number(0.0), "ssl.temperature=0.1"),
    "ssl.view_difference": Rule(at_least(0.0), "ssl.view_difference=0.5 (0: off)"),
    "ssl.epsilon": Rule(number(0.0), "ssl.epsilon=0.04"),
    **{
        f"ssl.perturbation.{key}": Rule(check, f"ssl.perturbation.{key}=0.4")
        for key, check in PERTURBATION.items()
    },
}

METHOD: dict[str, Rule] = {
    "method.name": Rule(_word, "method.name=genseg"),
    "method.augment_real": Rule(flag(), "method.augment_real=false"),
    "method.loss.bce_weight": Rule(at_least(0.0), "method.loss.bce_weight=1.0"),
    "method.loss.dice_weight": Rule(at_least(0.0), "method.loss.dice_weight=1.0"),
    # 0 would make the synthetic pairs a batch-norm passenger with no loss of their own
    "method.synthetic_weight": Rule(number(0.0), "method.synthetic_weight=1.0"),
    "method.synthetic_jitter.brightness": Rule(
        at_least(0.0), "method.synthetic_jitter={brightness:0.2,contrast:0.2,p:0.5}"
    ),
    "method.synthetic_jitter.contrast": Rule(
        at_least(0.0), "method.synthetic_jitter={brightness:0.2,contrast:0.2,p:0.5}"
    ),
    "method.synthetic_jitter.p": Rule(
        number(0.0, 1.0, closed=True), "method.synthetic_jitter={brightness:0.2,contrast:0.2,p:0.5}"
    ),
    "method.pretrain.steps": Rule(whole(0), "method.pretrain.steps=500"),
    "method.pretrain.lr": Rule(number(0.0), "method.pretrain.lr=2e-4"),
    "method.pretrain.cache_dir": Rule(text(optional=True), "method.pretrain.cache_dir=null"),
    "method.end_to_end_lr": Rule(at_least(0.0), "method.end_to_end_lr=2e-5 (0: G frozen)"),
}

GENERATOR: dict[str, Rule] = {
    "generator.name": Rule(_word, "generator.name=searchable"),
    "generator.model.base_width": Rule(whole(1), "generator.model.base_width=64"),
    "generator.model.max_width": Rule(whole(1), "generator.model.max_width=512"),
    "generator.model.bottleneck_size": Rule(whole(1), "generator.model.bottleneck_size=2"),
    "generator.model.norm": Rule(one_of(*NORMS), "generator.model.norm=batch"),
    "generator.model.dropout": Rule(number(0.0, 1.0, closed=True), "generator.model.dropout=0.5"),
    "generator.model.up_kernels": Rule(
        list_of(even_kernel, non_empty=True, unique=True), "generator.model.up_kernels=[4,6,8]"
    ),
    "generator.model.down_kernels": Rule(
        list_of(even_kernel, non_empty=True, unique=True), "generator.model.down_kernels=[4]"
    ),
    "generator.model.arch_temperature": Rule(number(0.0), "generator.model.arch_temperature=0.2"),
    "generator.model.search_down": Rule(flag(), "generator.model.search_down=false"),
    "generator.model.upsample_ops": Rule(
        _upsample_ops, "generator.model.upsample_ops=[transposed,nearest]"
    ),
    "generator.model.style_dim": Rule(whole(0), "generator.model.style_dim=8 (0: off)"),
    "generator.model.balanced_phases": Rule(flag(), "generator.model.balanced_phases=true"),
    "generator.model.skips_dropped": Rule(whole(0), "generator.model.skips_dropped=1 (0: off)"),
    "generator.pseudo_pairs.weight": Rule(
        at_least(0.0), "generator.pseudo_pairs.weight=1 (0: off)"
    ),
    "generator.pseudo_pairs.threshold": Rule(
        number(0.0, 1.0, closed=True), "generator.pseudo_pairs.threshold=0.9"
    ),
    "generator.pseudo_pairs.learn_weight": Rule(flag(), "generator.pseudo_pairs.learn_weight=true"),
    "generator.pseudo_pairs.rule": Rule(
        one_of(*PSEUDO_RULES), "generator.pseudo_pairs.rule=foreground"
    ),
    "generator.grid_score": Rule(flag(), "generator.grid_score=true"),
    "generator.discriminator.base_width": Rule(whole(1), "generator.discriminator.base_width=64"),
    "generator.discriminator.n_layers": Rule(whole(1), "generator.discriminator.n_layers=3"),
    "generator.discriminator.norm": Rule(
        one_of(*NORMS, "none"), "generator.discriminator.norm=batch"
    ),
    "generator.gan_loss": Rule(one_of(*GAN_LOSSES), "generator.gan_loss=lsgan"),
    "generator.lambda_l1": Rule(at_least(0.0), "generator.lambda_l1=100"),
    "generator.lambda_kl": Rule(at_least(0.0), "generator.lambda_kl=0.01"),
    "generator.lambda_fm": Rule(at_least(0.0, optional=True), "generator.lambda_fm=10 (0: off)"),
    "generator.unlabeled_realism": Rule(
        at_least(0.0, optional=True), "generator.unlabeled_realism=1 (0: off)"
    ),
    "generator.skip_augment": Rule(
        list_of(_word), "generator.skip_augment=[albumentations.Affine]"
    ),
    "generator.width": Rule(whole(1), "generator.width=16"),
    "generator.depth": Rule(whole(1), "generator.depth=3"),
    "generator.model.latent": Rule(whole(1), "generator.model.latent=128"),
    "generator.critic_steps": Rule(whole(1), "generator.critic_steps=5"),
    "generator.gp_weight": Rule(at_least(0.0), "generator.gp_weight=10"),
}

# keys a saved run's config may lack, with the value under which the code trains it as it did
# without them: a resumption that has the key at this value continues the same run
ABSENT_MEANS: dict[str, object] = {
    "generator.model.upsample_ops": ["transposed"],
    "generator.pseudo_pairs.weight": 0.0,
    "generator.pseudo_pairs.threshold": 0.9,
    "generator.pseudo_pairs.learn_weight": False,
    "generator.pseudo_pairs.rule": "mean",
    "mlo.pseudo_weight_lr": 5.0e-2,
    "mlo.pseudo_weight_max": 2.0,
    "generator.grid_score": False,
    "generator.model.style_dim": 0,
    "generator.model.balanced_phases": False,
    "generator.model.skips_dropped": 0,
    "generator.lambda_kl": 0.01,  # no effect without the code
}
# keys a saved run's config may lack at any value, where the saved run had the option they tune
# switched off (key -> (its switch, the switch's off value))
ABSENT_WHILE_OFF: dict[str, tuple[str, object]] = {
    "generator.pseudo_pairs.rule": ("generator.pseudo_pairs.weight", 0.0),
}

OTHER: dict[str, Rule] = {
    "dataset.channels": Rule(one_of(1, 3), "dataset.channels=1 (grey) or 3 (colour)"),
    "optim.optimizer.lr": Rule(number(0.0), "optim.optimizer.lr=1e-3"),
    "optim.optimizer.weight_decay": Rule(at_least(0.0), "optim.optimizer.weight_decay=1e-4"),
    "optim.optimizer.momentum": Rule(number(0.0, 1.0, closed=True), "optim.optimizer.momentum=0.9"),
}

METHOD_SETTINGS: dict[str, Rule] = {**MLO, **SSL, **METHOD, **GENERATOR, **OTHER}

# keys of these groups without a rule here: what checks them instead
EXEMPT: dict[str, str] = {
    "_target_": "the class to build; Hydra names a wrong one",
    "_partial_": "Hydra's own",
    "_recursive_": "Hydra's own",
    "ssl.name": "the choice of the ssl group, checked as a group",
    "ssl.label": "text appended to the method's name",
    "ssl.optimizer": "${optim.optimizer}, checked there",
    "ssl.partner": "a backbone config, built as the backbone is",
    "ssl.feature_dropout": "the objective's own check names its key (fixmatch)",
    "method.generator": "${generator}",
    "method.mlo": "${mlo}",
    "method.synthetic_jitter": "null, or its three keys checked above",
}


def exempt(key: str) -> bool:
    """Whether `key` is left to another check (see `EXEMPT`)."""
    last = key.rsplit(".", 1)[-1]
    return last in EXEMPT or any(key == k or key.startswith(f"{k}.") for k in EXEMPT)


# ----- combinations ---------------------------------------------------------------------------
def _has_alphas(generator: DictConfig) -> bool:
    """Whether the generator has architecture weights for the upper level to move."""
    model = generator.get("model")
    if not isinstance(model, DictConfig) or "up_kernels" not in model:
        return False
    searched_down = bool(model.get("search_down")) and len(model.get("down_kernels", [])) > 1
    return len(model.up_kernels) > 1 or searched_down


def _check_genseg(cfg: DictConfig) -> None:
    mlo, method = cfg.mlo, cfg.method
    if mlo.hypergrad == "finite_difference":
        if int(mlo.unroll_steps) != 1:
            raise GensegError(
                f"mlo.unroll_steps={mlo.unroll_steps} needs mlo.hypergrad=second_order; "
                "finite_difference unrolls one step (set mlo.unroll_steps=1)"
            )
        if mlo.upper_precision != "fp32":
            raise GensegError(
                f"mlo.upper_precision={mlo.upper_precision} has no effect with "
                "mlo.hypergrad=finite_difference, which always runs in fp32; drop it or use "
                "mlo.hypergrad=second_order"
            )
    if float(mlo.trust_region) > 0 and not mlo.generator_weights:
        raise GensegError(
            f"mlo.trust_region={mlo.trust_region} holds the generator's weights near their "
            "pre-trained values, but mlo.generator_weights=false leaves them to the GAN step; "
            "set mlo.generator_weights=true or mlo.trust_region=0"
        )
    # smoke runs (profile=debug) do this on purpose: said, not refused
    if int(mlo.arch_every) > int(cfg.trainer.steps):
        log.warning(
            "mlo.arch_every=%s is more than trainer.steps=%s: the upper step never runs and "
            "genseg trains as separate with a moving generator; set mlo.arch_every=%s or less",
            mlo.arch_every,
            cfg.trainer.steps,
            cfg.trainer.steps,
        )
    if mlo.learn_synthetic_weight and float(method.synthetic_weight) >= float(
        mlo.synthetic_weight_max
    ):
        raise GensegError(
            f"method.synthetic_weight={method.synthetic_weight} must lie below "
            f"mlo.synthetic_weight_max={mlo.synthetic_weight_max} to be learned; raise "
            "mlo.synthetic_weight_max"
        )
    known = sorted(k for k, v in mlo.items() if isinstance(v, DictConfig) and "_target_" in v)
    for name in mlo.levers:
        if name not in known:
            raise GensegError(
                f"mlo.levers names '{name}', which has no lever config mlo.{name}; "
                f"known levers: {', '.join(known)}"
            )
    if "mask_warp" in mlo.levers and int(cfg.dataset.dims) != 2:
        raise GensegError("mlo.levers: mask_warp supports 2D data only; drop it for 3D runs")
    if not (
        _has_alphas(cfg.generator)
        or mlo.generator_weights
        or mlo.learn_synthetic_weight
        or OmegaConf.select(cfg, "generator.pseudo_pairs.learn_weight", default=False)
        or len(mlo.levers)
        or mlo.sample_weights != "none"
    ):
        raise GensegError(
            f"method=genseg with generator={cfg.generator.get('name')} gives the upper level "
            "nothing to learn (no architecture weights); set mlo.learn_synthetic_weight=true or "
            "mlo.generator_weights=true, name levers in mlo.levers, set "
            "mlo.sample_weights=difference, use a searchable generator, or train method=separate"
        )


def _check_style_code(cfg: DictConfig) -> None:
    """The pseudo weight's tangent is checked for G's step without an appearance code only."""
    dim = OmegaConf.select(cfg, "generator.model.style_dim", default=0) or 0
    if dim and OmegaConf.select(cfg, "generator.pseudo_pairs.learn_weight", default=False):
        raise GensegError(
            f"generator.pseudo_pairs.learn_weight=true: the weight's hypergradient does not "
            f"cover the appearance code of generator.model.style_dim={dim}; set "
            "generator.model.style_dim=0 or generator.pseudo_pairs.learn_weight=false"
        )


def check_combinations(cfg: DictConfig) -> None:
    """Refuse values that are valid one by one but do nothing, or cannot be built, together."""
    method = cfg.method
    loss = method.get("loss")
    weighted = isinstance(loss, DictConfig) and {"bce_weight", "dice_weight"} <= set(loss)
    if weighted and float(loss.bce_weight) == 0 and float(loss.dice_weight) == 0:
        raise GensegError(
            "method.loss.bce_weight=0 and method.loss.dice_weight=0 leave the segmenter no "
            "loss; set either above 0"
        )
    if "generator" in method:  # separate, genseg
        model = cfg.generator.get("model")
        widths = isinstance(model, DictConfig) and "max_width" in model
        if widths and int(model.max_width) < int(model.base_width):
            raise GensegError(
                f"generator.model.max_width={model.max_width} is below "
                f"generator.model.base_width={model.base_width}; raise max_width"
            )
        check_generator_size(cfg)
        _check_style_code(cfg)
        check_pseudo_pairs(cfg)
        check_recipe(cfg)
    if "mlo" in method:
        _check_genseg(cfg)
    ssl = cfg.get("ssl")
    if isinstance(ssl, DictConfig) and ssl.get("pseudo_labels") is not None:
        given = OmegaConf.select(ssl, "teacher_run", default=None, throw_on_missing=False)
        if (ssl.pseudo_labels == "run") != bool(given):
            raise GensegError(
                f"ssl.pseudo_labels={ssl.pseudo_labels}: pseudo labels from a trained run need "
                "both ssl.pseudo_labels=run and ssl.teacher_run=RUN_DIR (ssl=self_training)"
            )
