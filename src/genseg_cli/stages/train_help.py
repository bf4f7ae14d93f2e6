"""`genseg train --help`: every config group with one line per option, read from `conf/`.

Hydra's own help lists a group's options on one line without saying what they are and then
prints the whole composed config. Here each option gets the first comment line of its yaml (the
sentence every config file starts with), the default is marked, and the composed config stays
one command away (`--cfg job`). Adding a yaml adds its line: nothing here lists options by hand.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from genseg_cli.core.config import conf_dir

HIDDEN_GROUPS = {"hydra", "paths"}  # internals: where runs go is an override, not a choice
WIDTH = 100


def describe(path: Path) -> str:
    """The first comment line of a config file that is not a Hydra directive ('' if none)."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text.startswith("#"):
            if text:  # the comment block ended
                break
            continue
        text = text.lstrip("#").strip()
        if text and not text.startswith("@package"):
            return text
    return ""


def defaults() -> dict[str, str]:
    """Group -> option chosen by conf/train.yaml's defaults list."""
    chosen = {}
    for entry in OmegaConf.to_container(OmegaConf.load(conf_dir() / "train.yaml").defaults):
        if isinstance(entry, dict):
            for group, option in entry.items():
                if not group.startswith("override") and option is not None:
                    chosen[group] = str(option)
    return chosen


def shorten(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


def train_help() -> str:
    """The help text: usage, then each group's options with their one-line descriptions."""
    chosen = defaults()
    lines = [
        "usage: genseg train [group=option ...] [key=value ...]   (-m: a sweep over a,b lists)",
        "",
        "Train a segmenter. Choose from each group with group=option (* marks the default);",
        "any value of the composed config can be overridden with key=value.",
        "",
    ]
    groups = sorted(p for p in conf_dir().iterdir() if p.is_dir() and p.name not in HIDDEN_GROUPS)
    for group in groups:
        options = sorted(group.glob("*.yaml"))
        if not options:
            continue
        lines.append(f"{group.name}:")
        width = max(len(p.stem) for p in options) + 2
        for path in options:
            mark = "*" if chosen.get(group.name) == path.stem else " "
            head = f" {mark}{path.stem:<{width}}"
            lines.append(head + shorten(describe(path), WIDTH - len(head)))
        lines.append("")
    lines += [
        "examples:",
        "  genseg train dataset=ph2 n_labeled=40 method=genseg seed=1",
        "  genseg train -m dataset=jsrt method=baseline,genseg seed=0,1,2",
        "  genseg train resume=outputs/runs/jsrt/genseg/n9_s0_<time>   (continue a stopped run)",
        "",
        "genseg train --cfg job [overrides]   prints the composed config of a run",
        "genseg train --hydra-help            Hydra's own options (launchers, sweepers, logging)",
    ]
    return "\n".join(lines)
