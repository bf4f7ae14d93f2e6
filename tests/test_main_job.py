"""`make train` on a fresh machine: with an empty data dir and a local server standing in for
the internet (GENSEG_MIRROR), the exact commands of the Makefile's train target download
Kvasir-SEG, verify, prepare and check it, train GenSeg a few steps and print the results table;
with the data already there, nothing is downloaded."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from genseg_cli.cli import main
from genseg_cli.data import remote
from genseg_cli.data.registry import dataset_spec
from tests.data.local_server import kvasir_archive, serve, sha256, use_plan

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
# enough pool images for the main job's 40 labels (32 train + 8 validation) and a test set
TRAIN, VAL = [f"cju{i:03d}" for i in range(44)], [f"cjv{i:03d}" for i in range(6)]
# a smoke run of the main job: the Makefile's TRAIN_ARGS hook, as a user would pass it
SMOKE = [
    "profile=debug",
    "evaluation.ood=true",  # the debug profile scores no OOD set; the main job does
    "trainer.precision=fp32",
    "method.pretrain.steps=2",
    "method.pretrain.cache_dir=null",
    "evaluation.tstr_steps=2",
    "mlo.arch_every=2",
]


def make_train(data_dir: Path, run_dir: Path) -> list[list[str]]:
    """The commands `make train` runs with this data dir (make -n: printed, not run)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    train_args = " ".join([*SMOKE, f"hydra.run.dir={run_dir}"])
    out = subprocess.run(
        [
            "make",
            "--no-print-directory",  # under `make test` a nested make would name its folder
            "-n",
            "train",
            f"VENV={VENV}",
            f"GENSEG_DATA_DIR={data_dir}",
            f"TRAIN_ARGS={train_args}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return [shlex.split(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The registry's Kvasir-SEG files, small, on a local mirror: the registry keeps its URLs
    (GENSEG_MIRROR must redirect them) and takes the checksums of the files served."""
    with serve(tmp_path / "www") as server:
        kvasir_archive(tmp_path / "src", server.root, TRAIN, VAL)
        plan = remote.download_plan(dataset_spec("kvasir"))
        served = {
            "kvasir-seg.zip": "kvasir-seg.zip",
            "kvasir-seg-train.txt": "train.txt",
            "kvasir-seg-val.txt": "val.txt",
        }
        files = []
        for source in plan.files:
            path = server.root / source.filename
            (server.root / served[source.filename]).rename(path)  # served by registry name
            files.append(replace(source, md5=None, sha256=sha256(path)))
        use_plan(monkeypatch, replace(plan, files=tuple(files)))
        monkeypatch.setenv("GENSEG_MIRROR", f"{server.base}/")
        yield server


def run_line(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """One command of the recipe: `genseg data ...` in this process (the registry is patched
    here), anything else as the subprocess make would start."""
    assert Path(argv[0]).name == "genseg", argv
    if argv[1] == "data":
        return main(argv[1:]), ""
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.returncode, out.stdout


def test_make_train_runs_from_an_empty_data_dir_to_the_results_table(
    mirror, tmp_path, monkeypatch, capsys
) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    monkeypatch.setenv("GENSEG_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "200")
    env = {**os.environ, "GENSEG_OUTPUT_DIR": str(tmp_path / "outputs")}
    commands = make_train(data, run)
    assert [c[1:3] for c in commands] == [
        ["data", "download"],
        ["data", "check"],
        ["train", "dataset=kvasir"],
    ]
    assert commands[2][3:5] == ["n_labeled=40", "method=genseg"]  # the main job, as documented
    assert commands[0][-2:] == ["--max-size", "256"]  # the size of the copy CI reads
    stdout = ""
    for argv in commands:
        code, out = run_line(argv, env)
        assert code == 0, capsys.readouterr()
        stdout += out
    said = capsys.readouterr().out
    # downloaded from the mirror, verified, prepared with the official split, checked
    assert {p.rsplit("/", 1)[1] for p in mirror.requests} == {
        "kvasir-seg.zip",
        "kvasir-seg-train.txt",
        "kvasir-seg-val.txt",
    }
    assert f"prepared {len(TRAIN) + len(VAL)} pairs of kvasir" in said
    assert "(with the official split)" in said and "kvasir is valid" in said
    assert sorted(p.name for p in data.iterdir()) == ["kvasir"]  # archives deleted
    # trained and scored; its out-of-domain set is behind a registration: said, not scored
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["method"] == "genseg" and metrics["run"]["n_train"] == 32
    assert metrics["test"]["n"] == len(VAL) and set(metrics["ood_absent"]) == {"cvc_clinicdb"}
    table = stdout[stdout.index("kvasir · genseg") :]  # the results table ends the output
    assert "test (in-domain)" in table and "cvc_clinicdb (OOD)" in table
    assert (
        "not scored" in table
        and "genseg data prepare cvc_clinicdb" in metrics["ood_absent"]["cvc_clinicdb"]
    )

    # the second time the data is there: the same commands download nothing
    mirror.requests.clear()
    assert main(commands[0][1:]) == 0
    assert "already in" in capsys.readouterr().out and mirror.requests == []
