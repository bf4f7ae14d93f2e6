"""The pre-flight checks of the generator's settings together with the method and the data
(`genseg_cli.engine.method_settings.check_combinations` calls them): a model size the generator
can halve, a recipe fit for the method and the data, pseudo-labelled pairs with a teacher and an
update to reach.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError

PIX2PIX = "genseg_cli.generators.pix2pix.Pix2PixRecipe"  # a generator config without _target_


def recipe_class(cfg: DictConfig) -> type | None:
    """The generator recipe's class, or None where Hydra will name a wrong `_target_` later."""
    from hydra.utils import get_class

    try:
        return get_class(cfg.generator.get("_target_", PIX2PIX))
    except Exception:  # noqa: BLE001 - a wrong _target_ is Hydra's to name when the run builds it
        return None


def check_generator_size(cfg: DictConfig) -> None:
    """The pix2pix generator halves the model size down to its bottleneck exactly."""
    model = cfg.generator.get("model")
    if not isinstance(model, DictConfig) or "bottleneck_size" not in model:
        return
    from genseg_cli.data.spec import DataSpec

    size = DataSpec.from_config(cfg).model_size
    shape = tuple(size) if isinstance(size, tuple | list) else (int(size),)
    bottleneck, smallest = int(model.bottleneck_size), min(shape)
    depth = round(math.log2(smallest / bottleneck)) if smallest >= bottleneck else 0
    if depth >= 1 and bottleneck * 2**depth == smallest and all(s % 2**depth == 0 for s in shape):
        return
    fitting = bottleneck * 2 ** max(1, round(math.log2(max(smallest / bottleneck, 2))))
    shown = shape[0] if len(shape) == 1 else list(shape)
    raise GensegError(
        f"data.image_size={shown} does not fit the generator of method={cfg.method.name}: its "
        f"smallest side must be generator.model.bottleneck_size={bottleneck} times a power of "
        f"two (every side a multiple of it); e.g. data.image_size={fitting}"
    )


def check_recipe(cfg: DictConfig) -> None:
    """The generator recipe's capabilities against the method and the data."""
    recipe = recipe_class(cfg)
    if recipe is None:
        return
    name, dims = cfg.generator.get("name"), int(cfg.dataset.dims)
    if dims not in getattr(recipe, "supported_dims", (2, 3)):
        raise GensegError(
            f"generator={name} makes {' or '.join(f'{d}D' for d in recipe.supported_dims)} "
            f"data, not the {dims}D data of dataset={cfg.dataset.name}; use generator=searchable"
        )
    # genseg's upper level moves the generator through the images it makes for the masks genseg
    # draws; a recipe that draws its own (thresholded) masks gives it no such path
    if "mlo" in cfg.method and getattr(recipe, "makes_masks", False):
        raise GensegError(
            f"method=genseg needs a mask-conditioned generator, and generator={name} makes its "
            f"own masks; train method=separate generator={name}"
        )


def check_pseudo_pairs(cfg: DictConfig) -> None:
    """Pseudo-labelled pairs need a teacher: a trained run's (ssl.pseudo_labels=run), or an EMA
    teacher (ssl objectives with ema_decay), whose pairs only a generator learning end to end
    (genseg) can use."""
    pseudo = cfg.generator.get("pseudo_pairs")
    weight = float(pseudo.get("weight") or 0.0) if isinstance(pseudo, DictConfig) else 0.0
    if isinstance(pseudo, DictConfig) and pseudo.get("learn_weight", False):
        check_learned_pseudo_weight(cfg, weight)
    if weight <= 0:
        return
    ssl, key = cfg.get("ssl") or {}, f"generator.pseudo_pairs.weight={weight:g}"
    trained = ssl.get("pseudo_labels") == "run"
    if not trained and not ("ema_decay" in ssl and ssl.get("pseudo_labels", "ema") == "ema"):
        raise GensegError(
            f"{key} needs a teacher for the pool's images: ssl=self_training "
            "ssl.teacher_run=RUN_DIR (a finished run), or an ssl objective with an EMA teacher "
            "(ssl=fixmatch, ssl=mean_teacher); or set generator.pseudo_pairs.weight=0"
        )
    if not trained and "mlo" not in cfg.method:
        raise GensegError(
            f"{key}: an EMA teacher learns with the segmenter, after method={cfg.method.name}'s "
            "generator has stopped learning; use method=genseg, or a trained teacher "
            "(ssl=self_training ssl.teacher_run=RUN_DIR)"
        )


def check_learned_pseudo_weight(cfg: DictConfig, weight: float) -> None:
    """generator.pseudo_pairs.learn_weight: genseg's upper level learns it, from a starting weight
    inside (0, mlo.pseudo_weight_max), through a recipe whose step it can differentiate."""
    key = "generator.pseudo_pairs.learn_weight=true"
    if "mlo" not in cfg.method:
        raise GensegError(
            f"{key}: only method=genseg has an upper level to learn the pseudo pairs' weight; "
            "use method=genseg, or set generator.pseudo_pairs.learn_weight=false"
        )
    if weight <= 0:
        raise GensegError(
            f"{key} needs pseudo pairs: set generator.pseudo_pairs.weight above 0 (the weight "
            "it starts from)"
        )
    maximum = float(cfg.mlo.pseudo_weight_max)
    if weight >= maximum:
        raise GensegError(
            f"generator.pseudo_pairs.weight={weight:g} must lie below "
            f"mlo.pseudo_weight_max={maximum:g} to be learned; raise mlo.pseudo_weight_max"
        )
    recipe = recipe_class(cfg)
    if recipe is not None and not getattr(recipe, "tangent_along_weights", False):
        raise GensegError(
            f"{key}: generator={cfg.generator.get('name')} cannot differentiate its step in the "
            "pairs' weights; use generator=searchable or set "
            "generator.pseudo_pairs.learn_weight=false"
        )
