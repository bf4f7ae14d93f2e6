"""Shell tab completion for `genseg`: stage names, then Hydra's completion of `genseg train`.

Hydra's completion assumes the application is the first word of the command line: its install
script registers a function for `genseg train` (two command names, `genseg` and `train`) and the
function asks `genseg -sc query=bash` for candidates with the whole line in COMP_LINE. Here the
first word is the program and the second the stage, so this module stands between the two:
`install` rewrites the registration to the one command `genseg`, and `query` completes the stage
name itself or hands `genseg train ...` to Hydra as if `train` were not there.

    eval "$(genseg -sc install=bash)"    # in ~/.bashrc; `genseg train -sc install=bash` too

Each TAB starts a process, so nothing here imports torch: stage names need no import at all, and
overrides are completed by a bare Hydra application over genseg's config (the training task is
never called by Hydra's completion), not by `genseg_cli.stages.train`, whose imports take seconds.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Callable, Iterable

FLAGS = ("-sc", "--shell-completion")
HYDRA_STAGE = "train"  # the one stage whose arguments are Hydra overrides


def is_completion(args: list[str]) -> bool:
    """Whether a command line asks for shell completion (`-sc install=bash`, `-sc query=bash`)."""
    return any(a in FLAGS or a.startswith("--shell-completion=") for a in args)


def hydra_completion(flags: list[str]) -> int:
    """Run Hydra's completion (`-sc install=bash`, `-sc query=bash`) over `genseg train`'s
    config, as `genseg train` would, without importing the training code."""
    import hydra

    from genseg_cli.core.config import conf_dir, register_resolvers

    register_resolvers()
    app = hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(
        _never_called
    )
    sys.argv = ["genseg train", *flags]
    app()
    return 0


def _never_called(cfg: object) -> None:
    raise AssertionError("Hydra's shell completion does not run the task")


def install_script(hydra_script: str) -> str:
    """Hydra's install script, registered for the command `genseg` alone (Hydra registers
    `genseg train`, which `complete` reads as two commands, `genseg` and `train`)."""
    return re.sub(r"\bgenseg train\b", "genseg", hydra_script)


def stage_candidates(line: str, stages: Iterable[str]) -> list[str]:
    """The stages a partly typed stage name can become (`genseg tr` -> ['train'])."""
    words = line.split()
    prefix = words[1] if len(words) > 1 and not line.endswith(" ") else ""
    return [s for s in stages if s.startswith(prefix)]


def complete(args: list[str], stages: Iterable[str], run_train: Callable[[list[str]], int]) -> int:
    """Answer a completion request. `run_train` runs `genseg train` with the given arguments
    (Hydra's -sc handling prints the install script or the candidates)."""
    flags = [a for a in args if a != HYDRA_STAGE]
    if not any(a.startswith("query") for a in flags):  # install / uninstall
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            code = run_train(flags)
        print(install_script(captured.getvalue()), end="")
        return code
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    completing_stage = len(words) < 2 or (len(words) == 2 and not line.endswith(" "))
    if completing_stage:
        print(" ".join(stage_candidates(line, stages)))
        return 0
    if words[1] != HYDRA_STAGE:  # argparse stages: their options are in `genseg STAGE --help`
        print("")
        return 0
    # Hydra strips the first word (the application); drop the stage so it sees `genseg <overrides>`
    os.environ["COMP_LINE"] = re.sub(rf"^(\s*\S+)\s+{HYDRA_STAGE}\b", r"\1", line, count=1)
    if "COMP_POINT" in os.environ:
        point = int(os.environ["COMP_POINT"]) - (len(line) - len(os.environ["COMP_LINE"]))
        os.environ["COMP_POINT"] = str(max(point, 0))
    return run_train(flags)
