"""`genseg <stage> [args]`: the command line. Each stage lives in `genseg_cli.stages.<stage>`."""

from __future__ import annotations

import importlib
import logging
import sys

from rich.console import Console
from rich.text import Text

from genseg_cli import __version__
from genseg_cli.core.errors import STOPPED, GensegError
from genseg_cli.core.suggest import did_you_mean
from genseg_cli.stages.completion import complete, hydra_completion, is_completion

STAGES = {
    "train": "train a segmenter with a method (baseline, genseg, ...); Hydra overrides, -m sweeps",
    "generate": "write synthetic image-mask pairs from a trained generator",
    "evaluate": "score a trained run on its test split and other datasets",
    "predict": "segment new images with a trained run; export TorchScript/ONNX",
    "report": "gather runs into tables and Dice-versus-labels figures",
    "runs": "list the runs under a folder: status, dataset, method, budget, seed, test Dice",
    "data": "list, check, prepare and download datasets (list | check | prepare | download NAME)",
    "benchmark": "run a suite of methods x datasets x seeds by blocks; paired tables with CIs",
}
HYDRA_STAGES = {"train"}
err_console = Console(stderr=True)


def usage() -> str:
    lines = [
        f"genseg {__version__}: GenSeg experiments for segmentation with ultra-few labels",
        "",
        "usage: genseg <stage> [args]   (genseg <stage> --help for its options)",
        "",
        "stages:",
    ]
    # a gap of two spaces at least after each name: a wrapped description goes on under itself
    lines += [f"  {name:<11}{text}" for name, text in STAGES.items()]
    lines += ["", "example: genseg train dataset=jsrt backbone=unet n_labeled=9 method=baseline"]
    lines += ['tab completion: eval "$(genseg -sc install=bash)"']
    return "\n".join(lines)


def with_default_profile(args: list[str]) -> list[str]:
    """Pick the paper profile on a CUDA machine unless the user chose a profile or an experiment
    (an experiment names its own profile: `*_cpu` ones the CPU profile, `*_paper` the paper's)."""
    if any(a.lstrip("+~").startswith(("profile=", "experiment=")) for a in args):
        return args
    import torch

    return [*args, "profile=paper"] if torch.cuda.is_available() else args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        from genseg_cli.stages.arguments import fit_width

        print(fit_width(usage()))
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    if is_completion(argv):  # `genseg -sc ...` or `genseg train -sc ...`: no torch, see there
        return complete(argv, STAGES, hydra_completion)
    stage, args = argv[0], argv[1:]
    if stage not in STAGES:
        err_console.print(
            f"[red]error:[/red] unknown stage '{stage}'{did_you_mean(stage, STAGES)}; "
            f"stages: {', '.join(STAGES)}"
        )
        return 2
    if stage in HYDRA_STAGES:
        args = with_default_profile(args)
    if not (stage in HYDRA_STAGES and any(a in ("--info", "-i") for a in args)):
        # Hydra's --info configures its own log handler; a second one would print every line twice
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        module = importlib.import_module(f"genseg_cli.stages.{stage}")
        return int(module.main(args) or 0)
    except GensegError as err:
        if err.exit_code == 0:  # an answer to --help, not a failure
            print(err)
        else:
            # plain text: a message may hold [brackets] that rich would read as markup
            err_console.print(Text.assemble(("error:", "red"), f" {err}"), soft_wrap=True)
        return err.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a training run (a run records it itself)
        err_console.print(f"[red]interrupted:[/red] genseg {stage} stopped by Ctrl-C")
        return STOPPED


if __name__ == "__main__":
    sys.exit(main())
