"""Tab completion: `genseg -sc install=bash` registers `genseg` alone, the stage name completes,
and `genseg train ...` completes Hydra overrides (not "unknown stage '-sc'")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genseg_cli.cli import main


def query(line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COMP_LINE", line)
    monkeypatch.setenv("COMP_POINT", str(len(line)))
    assert main(["-sc", "query=bash"]) == 0
    return capsys.readouterr().out


def test_install_registers_the_genseg_command_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-sc", "install=bash"]) == 0
    script = capsys.readouterr().out
    registration = [line for line in script.splitlines() if "complete -o nospace" in line]
    assert registration and registration[0].rstrip().endswith("hydra_bash_completion genseg")
    assert "genseg train" not in script


def test_train_install_is_the_same_script(capsys: pytest.CaptureFixture[str]) -> None:
    main(["-sc", "install=bash"])
    plain = capsys.readouterr().out
    main(["train", "-sc", "install=bash"])
    assert capsys.readouterr().out == plain


def test_stage_names_complete(capsys, monkeypatch) -> None:
    assert query("genseg tr", capsys, monkeypatch).split() == ["train"]
    assert set(query("genseg ", capsys, monkeypatch).split()) >= {"train", "report", "data"}


def test_train_overrides_complete_through_hydra(capsys, monkeypatch) -> None:
    assert "dataset=" in query("genseg train data", capsys, monkeypatch).split()
    assert "dataset=jsrt" in query("genseg train dataset=j", capsys, monkeypatch).split()
    assert "method=genseg" in query("genseg train dataset=jsrt method=g", capsys, monkeypatch)


def test_other_stages_offer_nothing(capsys, monkeypatch) -> None:
    assert query("genseg report sw", capsys, monkeypatch).strip() == ""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_with_the_installed_function(tmp_path: Path) -> None:
    """The installed function, run by bash itself, fills COMPREPLY for `genseg train dataset=j`."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "genseg").is_file():
        pytest.skip("the genseg entry point is not installed beside this python")
    script = (
        'eval "$(genseg -sc install=bash)"\n'
        'COMP_LINE="genseg train dataset=j"; COMP_POINT=${#COMP_LINE}; COMP_CWORD=2\n'
        'hydra_bash_completion; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert "dataset=jsrt" in out.stdout.split(), out.stderr


@pytest.mark.parametrize("line", ["genseg tr", "genseg train dataset=j"])
def test_completion_imports_no_torch(line: str) -> None:
    """Each TAB is a new process: completing must not pay for torch's import (seconds), only for
    Hydra's, so that it answers well under a second."""
    code = (
        "import sys, time; start = time.perf_counter(); from genseg_cli.cli import main; "
        "main(['-sc', 'query=bash']); "
        "print('torch' in sys.modules, round(time.perf_counter() - start, 2))"
    )
    env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    *candidates, torch_loaded, seconds = out.stdout.split()
    assert candidates and torch_loaded == "False", out.stdout
    assert float(seconds) < 3, seconds  # ~0.3 s here; torch alone took ~8 s on this machine
