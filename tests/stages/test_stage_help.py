"""`genseg STAGE --help` of the stages that work on runs: every argument on its own line with
what it means, and the values a choice argument allows."""

from __future__ import annotations

import pytest

from genseg_cli.cli import main
from genseg_cli.stages import evaluate, generate, predict

ALLOWED = {
    "generate": (generate.ARGS, "format", "standard, nnunet"),
    "predict": (predict.ARGS, "export", "torchscript, onnx"),
    "evaluate": (evaluate.ARGS, "resolution", "original, model"),
}


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_help_lists_each_argument_with_its_meaning(stage: str, capsys) -> None:
    spec, choice, values = ALLOWED[stage]
    assert main([stage, "--help"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert set(lines) == set(spec), out
    for key, line in lines.items():
        assert spec[key].help and spec[key].help in line, f"{stage} {key} has no help line"
    assert f"one of: {values}" in lines[choice]
    assert "required" in lines["run_dir"]


def test_train_help_gives_every_option_a_line_of_its_own(capsys) -> None:
    from genseg_cli.core.config import conf_dir

    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    lines = {
        line[2:].split()[0]: line for line in out.splitlines() if line.startswith(("  ", " *"))
    }
    for group in ("backbone", "method", "ssl", "dataset"):
        for path in (conf_dir() / group).glob("*.yaml"):
            assert path.stem in lines, f"{group}={path.stem} missing from train --help"
            assert len(lines[path.stem].split()) > 2, f"{group}={path.stem} has no description"
    assert lines["unet"].startswith(" *")  # the default backbone is marked
    assert "swin_unet" in lines and "SwinUnet" in lines["swin_unet"]
