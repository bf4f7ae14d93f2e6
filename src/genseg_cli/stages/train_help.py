"""`genseg train --help`: every config group with one line per option, read from `conf/`.

Hydra's own help lists a group's options on one line without saying what they are and then
prints the whole composed config. Here each option gets the first comment line of its yaml (the
sentence every config file starts with), the default is marked, and the composed config stays
one command away (`--cfg job`). Adding a yaml adds its line: nothing here lists options by hand.
Lines wrap to the terminal's width under their option, never cut.
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import OmegaConf

from genseg_cli.core.config import conf_dir
from genseg_cli.stages.arguments import fit_width

HIDDEN_GROUPS = {"hydra", "paths", "benchmark"}  # internals, and the suites of genseg benchmark


SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z]|\s*$)")  # not "e.g. the", nor "et al. 2021"


def describe(path: Path) -> str:
    """The first sentence of a config file's opening comment, Hydra directives left out, over
    as many comment lines as it takes ('' if none)."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text.startswith("#"):
            if text or words:  # the comment block ended
                break
            continue
        text = text.lstrip("#").strip()
        if not text or text.startswith("@package"):
            if words:  # a blank comment line ends the paragraph
                break
            continue
        words.append(text)
        joined = " ".join(words)
        end = SENTENCE_END.search(joined)
        if end:
            return joined[: end.end()]
    return " ".join(words)


def defaults() -> dict[str, str]:
    """Group -> option chosen by conf/train.yaml's defaults list."""
    chosen = {}
    for entry in OmegaConf.to_container(OmegaConf.load(conf_dir() / "train.yaml").defaults):
        if isinstance(entry, dict):
            for group, option in entry.items():
                if not group.startswith("override") and option is not None:
                    chosen[group] = str(option)
    return chosen


def train_help(width: int | None = None) -> str:
    """The help text: usage, then each group's options with their one-line descriptions,
    wrapped to `width` (the terminal's by default)."""
    chosen = defaults()
    lines = [
        "usage: genseg train [group=option ...] [key=value ...]   (-m: a sweep over a,b lists)",
        "",
        "Train a segmenter. Choose from each group with group=option (* marks the default); "
        "any value of the composed config can be overridden with key=value.",
        "",
    ]
    groups = sorted(p for p in conf_dir().iterdir() if p.is_dir() and p.name not in HIDDEN_GROUPS)
    for group in groups:
        options = sorted(group.glob("*.yaml"))
        if not options:
            continue
        lines.append(f"{group.name}:")
        column = max(len(p.stem) for p in options) + 2
        for path in options:
            mark = "*" if chosen.get(group.name) == path.stem else " "
            lines.append(f" {mark}{path.stem:<{column}}{describe(path)}")
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
    return fit_width("\n".join(lines), width)
