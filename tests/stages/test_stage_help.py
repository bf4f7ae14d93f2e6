"""`genseg STAGE --help`: every argument (and, for train, every config option) on a line of its
own with what it means, the values a choice argument allows, and every line wrapped to the
terminal's width under its option, never cut."""

from __future__ import annotations

import pytest

from genseg_cli.cli import STAGES
from genseg_cli.cli import main as cli_main
from genseg_cli.core.config import conf_dir
from genseg_cli.stages import evaluate, generate, predict
from genseg_cli.stages.train_help import HIDDEN_GROUPS, describe

ALLOWED = {
    "generate": (generate.ARGS, "format", "standard, nnunet"),
    "predict": (predict.ARGS, "export", "torchscript, onnx"),
    "evaluate": (evaluate.ARGS, "resolution", "original, model"),
}
WIDTHS = [80, 200]


def help_of(stage: str | None, capsys, monkeypatch, width: int = 100) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    assert cli_main([stage, "--help"] if stage else ["--help"]) == 0
    return capsys.readouterr().out


def entries(out: str, lead: tuple[str, ...] = ("  ",)) -> dict[str, str]:
    """Each option's whole text by its name: a line that starts with `lead` and a name, then
    the more deeply indented lines it wraps onto, joined."""
    found: dict[str, str] = {}
    name = None
    for line in out.splitlines():
        if line.startswith(lead) and line[2:3].strip():
            name = line[2:].split()[0]
            found[name] = line
        elif name and line.startswith("   ") and line.strip():
            found[name] += " " + line.strip()
        else:
            name = None
    return {k: " ".join(v.split()) for k, v in found.items()}


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_help_lists_each_argument_with_its_meaning(stage: str, capsys, monkeypatch) -> None:
    spec, choice, values = ALLOWED[stage]
    lines = entries(help_of(stage, capsys, monkeypatch))
    assert set(lines) == set(spec), lines
    for key, line in lines.items():
        assert spec[key].help and spec[key].help in line, f"{stage} {key} has no help line"
    assert f"one of: {values}" in lines[choice]
    assert "required" in lines["run_dir"]


def test_train_help_gives_every_option_a_line_of_its_own(capsys, monkeypatch) -> None:
    lines = entries(help_of("train", capsys, monkeypatch), lead=("  ", " *"))
    for group in ("backbone", "method", "ssl", "dataset"):
        for path in (conf_dir() / group).glob("*.yaml"):
            assert path.stem in lines, f"{group}={path.stem} missing from train --help"
            assert len(lines[path.stem].split()) > 2, f"{group}={path.stem} has no description"
    assert lines["unet"].startswith("*unet ")  # the default backbone is marked
    assert "swin_unet" in lines and "SwinUnet" in lines["swin_unet"]


def test_an_option_is_described_by_its_first_sentence_whole() -> None:
    paper = describe(conf_dir() / "benchmark" / "paper.yaml")  # a sentence over two lines
    assert paper.endswith("profile (256 px, 5000 steps).")
    assert describe(conf_dir() / "backbone" / "swin_unet.yaml").startswith(
        "SwinUnet (Cao et al. 2021): Swin-T encoder"  # "al. 2021" does not end it
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("stage", [None, "train", *sorted(ALLOWED), "benchmark", "report", "runs"])
def test_help_fits_the_terminal_and_cuts_nothing(stage, width, capsys, monkeypatch) -> None:
    out = help_of(stage, capsys, monkeypatch, width)
    too_long = [line for line in out.splitlines() if len(line) > width]
    assert not too_long, too_long
    assert "…" not in out  # nothing cut short
    text = " ".join(out.split())
    if stage == "train":  # every option named, with its description whole
        for path in sorted(conf_dir().glob("*/*.yaml")):
            if path.parent.name not in HIDDEN_GROUPS:
                assert f"{path.stem} {describe(path)}" in text, path
    elif stage in ALLOWED:
        spec = ALLOWED[stage][0]
        assert all(f"{key} {spec[key].help}" in text for key in spec)
    elif stage is None:
        assert all(name in text for name in STAGES)
