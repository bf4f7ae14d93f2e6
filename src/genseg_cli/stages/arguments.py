"""key=value arguments of the stages that work on existing runs (evaluate, predict, generate,
report), parsed with OmegaConf so lists read as in Hydra: datasets=[nlm_mc,/data/mine]."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genseg_cli.core.errors import GensegError

REQUIRED = object()  # marks a key without a default


def parse_key_values(stage: str, args: list[str], spec: dict[str, Any]) -> DictConfig:
    """Defaults from `spec` (REQUIRED for mandatory keys) merged with `key=value` arguments.

    >>> parse_key_values("predict", ["run_dir=runs/a", "input=new"], {"run_dir": REQUIRED,
    ...                  "input": REQUIRED, "threshold": 0.5}).threshold
    0.5
    """
    usage = " ".join(f"{k}=..." if v is REQUIRED else f"[{k}={v}]" for k, v in spec.items())
    if any(a in ("-h", "--help") for a in args):
        raise GensegError(f"usage: genseg {stage} {usage}", exit_code=0)
    bad = [a for a in args if "=" not in a]
    if bad:
        raise GensegError(
            f"genseg {stage} takes key=value arguments, not {bad[0]!r}; usage: "
            f"genseg {stage} {usage}"
        )
    try:
        given = OmegaConf.from_dotlist(args)
    except OmegaConfBaseException as err:
        raise GensegError(f"cannot parse the arguments of genseg {stage}: {err}") from err
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise GensegError(
            f"unknown argument {unknown[0]!r} for genseg {stage}; allowed: {', '.join(spec)}"
        )
    missing = [k for k, v in spec.items() if v is REQUIRED and k not in given]
    if missing:
        raise GensegError(f"genseg {stage} needs {missing[0]}=...; usage: genseg {stage} {usage}")
    defaults = {k: None if v is REQUIRED else v for k, v in spec.items()}
    return OmegaConf.merge(OmegaConf.create(defaults), given)
