"""key=value arguments of the stages that work on existing runs (evaluate, predict, generate,
report), parsed with OmegaConf so lists read as in Hydra: datasets=[nlm_mc,/data/mine].

Each stage declares its arguments once, as a default (whose type the value must have) or an
`Arg` (type, choices, minimum); every value is checked here, before the stage does any work, so a
mistake is one line naming the argument instead of a traceback halfway through.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genseg_cli.core.errors import GensegError
from genseg_cli.core.suggest import did_you_mean

REQUIRED = object()  # marks a key without a default


@dataclass(frozen=True)
class Arg:
    """One argument: its default (REQUIRED: it must be given), the type of its value (int,
    float, str, bool or list; None: any), the values it may take, its smallest value, and one
    line for `--help`."""

    default: Any = REQUIRED
    kind: type | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    help: str = ""
    between: tuple[float, float] | None = None  # an open interval (low, high), ends excluded


def as_arg(value: Any) -> Arg:
    """A spec entry as an Arg: a plain default gives its type (REQUIRED and None: a string)."""
    if isinstance(value, Arg):
        return value
    kind = str if value is REQUIRED or value is None else type(value)
    return Arg(value, list if isinstance(value, list) else kind)


def as_list(value: Any) -> list[str]:
    """A list argument from [a,b], a,b or a single a (read as one entry, not its letters)."""
    if isinstance(value, ListConfig | list | tuple):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def checked(stage: str, key: str, value: Any, arg: Arg) -> Any:
    """`value` as the argument's type, or a GensegError naming the argument and the fix."""
    if value is None:
        if arg.default is None:
            return None
        raise GensegError(f"genseg {stage}: {key} needs a value, not null")
    shown = f"{key}={value}"
    if arg.kind is list:
        return as_list(value)
    if isinstance(value, DictConfig | ListConfig):
        raise GensegError(f"genseg {stage}: {key} takes one value, not {value}")
    if arg.kind is bool and not isinstance(value, bool):
        raise GensegError(f"genseg {stage}: {shown} must be true or false")
    if arg.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise GensegError(f"genseg {stage}: {shown} must be a whole number")
    if arg.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GensegError(f"genseg {stage}: {shown} must be a number")
        value = float(value)
    if arg.kind is str:
        value = str(value)
    if arg.choices and value not in arg.choices:
        raise GensegError(
            f"genseg {stage}: {shown} is not one of {', '.join(arg.choices)}"
            + did_you_mean(str(value), arg.choices)
        )
    if arg.minimum is not None and value < arg.minimum:
        raise GensegError(f"genseg {stage}: {shown} must be at least {arg.minimum:g}")
    if arg.between is not None and not arg.between[0] < value < arg.between[1]:
        low, high = arg.between
        raise GensegError(f"genseg {stage}: {shown} must lie strictly between {low:g} and {high:g}")
    return value


def check_device(stage: str, device: str) -> None:
    """A `device=` a stage can use, named as the stage's own argument (not trainer.device)."""
    if device == "auto" or device == "cpu":
        return
    if not device.startswith("cuda"):
        raise GensegError(f"genseg {stage}: device={device} is not one of auto, cpu, cuda, cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise GensegError(
            f"genseg {stage}: device={device} but CUDA is not available here; "
            "use device=auto or device=cpu"
        )


# where a help line's continuation lines start: under the text after a usage line's stage, or
# after an option (or a command) and its gap of two spaces or more; else under its own indent
HANGING = re.compile(r"usage: genseg \S+ |\s*\S(?:.*?\S)?\s{2,}(?=\S)|\s*")
MIN_TEXT = 20  # columns left for the text beside a hanging indent; else it goes under the name


def terminal_width() -> int:
    """The terminal's columns (COLUMNS first, as the shell sets it); 80 without a terminal."""
    return shutil.get_terminal_size((80, 24)).columns


def fit_width(text: str, width: int | None = None) -> str:
    """Help text wrapped to `width` (the terminal's by default): a longer line goes on under its
    hanging indent, never cut; a word wider than a whole line is split rather than overflow.

    >>> print(fit_width("  seeds  only these seeds of the suite, e.g. [0,1]", 40))
      seeds  only these seeds of the suite,
             e.g. [0,1]
    """
    width = max(width or terminal_width(), 2 * MIN_TEXT)
    lines = []
    for line in text.splitlines():
        if len(line) <= width:
            lines.append(line)
            continue
        head = HANGING.match(line).group(0)  # type: ignore[union-attr]
        indent = len(head) if width - len(head) >= MIN_TEXT else len(line) - len(line.lstrip())
        indent = min(indent, width - MIN_TEXT)
        lines += textwrap.wrap(
            line[len(head) :],
            width,
            initial_indent=head,
            subsequent_indent=" " * indent,
            break_on_hyphens=False,
        )
    return "\n".join(lines)


def help_text(stage: str, spec: dict[str, Arg], about: str = "") -> str:
    """`genseg STAGE --help`: the usage line, what the stage does, then one line per argument
    with its default, its allowed values or smallest value, and what it means."""
    usage = " ".join(
        f"{k}=..." if a.default is REQUIRED else f"[{k}={a.default}]" for k, a in spec.items()
    )
    lines = [f"usage: genseg {stage} {usage}"]
    if about:  # one paragraph, reflowed: its line breaks only fit the source
        lines += ["", " ".join(about.split())]
    lines += ["", "arguments:"]
    width = max(len(k) for k in spec) + 2
    for key, arg in spec.items():
        facts = ["required"] if arg.default is REQUIRED else []
        if arg.default not in (REQUIRED, None):  # None: the help line says what happens
            facts.append(f"default: {arg.default}")
        if arg.choices:
            facts.append(f"one of: {', '.join(arg.choices)}")
        if arg.minimum is not None:
            facts.append(f"at least {arg.minimum:g}")
        if arg.between is not None:
            facts.append(f"between {arg.between[0]:g} and {arg.between[1]:g}, exclusive")
        text = " ".join([arg.help, f"({'; '.join(facts)})" if facts else ""]).strip()
        lines.append(f"  {key:<{width}}{text}")
    return fit_width("\n".join(lines))


def parse_key_values(
    stage: str, args: list[str], spec: dict[str, Any], about: str = ""
) -> DictConfig:
    """Defaults from `spec` (REQUIRED for mandatory keys; an Arg to say more) merged with
    `key=value` arguments, each checked against its entry; `--help` prints `help_text` (`about`:
    what the stage does, in a sentence or two).

    >>> parse_key_values("predict", ["run_dir=runs/a", "input=new"], {"run_dir": REQUIRED,
    ...                  "input": REQUIRED, "threshold": 0.5}).threshold
    0.5
    """
    spec = {k: as_arg(v) for k, v in spec.items()}
    usage = " ".join(
        f"{k}=..." if a.default is REQUIRED else f"[{k}={a.default}]" for k, a in spec.items()
    )
    if any(a in ("-h", "--help", "help") for a in args):
        raise GensegError(help_text(stage, spec, about), exit_code=0)
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
            f"unknown argument {unknown[0]!r} for genseg {stage}"
            + did_you_mean(unknown[0], spec)
            + f"; allowed: {', '.join(spec)}"
        )
    missing = [k for k, a in spec.items() if a.default is REQUIRED and k not in given]
    if missing:
        raise GensegError(f"genseg {stage} needs {missing[0]}=...; usage: genseg {stage} {usage}")
    values = {k: None if a.default is REQUIRED else a.default for k, a in spec.items()}
    for key in given:
        values[key] = checked(stage, key, OmegaConf.select(given, key), spec[key])
    return OmegaConf.create(values)
