"""The bad-input matrix: what a user gets wrong, trying the README's commands in order, and what
genseg answers.

Each row of `ROWS` is one mistake: the command (after `genseg`), the exit code it must end with,
and words its message must hold. Placeholders: {run} a finished run (made once for the module),
{set} the good dataset folder it was trained on, {bad} a broken copy made by the row's `setup`,
{tmp} the row's own folder. Every row also checks that there is no traceback, that the finished
run is byte for byte unchanged (hashed once, compared after each row) and that no run folder was
left behind. Rows run in-process (`genseg_cli.cli.main`) when they must fail before Hydra starts
(the runner refuses to start Hydra), and through the installed console script (`via="script"`)
when the mistake is only seen in a run's pre-flight, inside Hydra.

Exit codes (README, Reliability): 2 a user mistake; 1 `genseg data check` found problems.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import write_pair
from tests.stages.test_cli import genseg

TRAIN = ("train", "profile=debug", "trainer.precision=fp32", "data.image_size=32")
ON_SET = ("dataset=folder", "dataset.root={set}", "dataset.channels=1", "n_labeled=4")
ON_BAD = ("dataset=folder", "dataset.root={bad}", "dataset.channels=1", "n_labeled=4")


# ----- broken inputs a row may need (each writes under the row's folder) ----------------------
def good_copy(tmp: Path, good: Path) -> Path:
    shutil.copytree(good, tmp / "bad")
    return tmp / "bad"


def mask_removed(tmp: Path, good: Path, run: Path) -> None:
    (good_copy(tmp, good) / "masks" / "case03.png").unlink()


def mask_of_values(*values: int) -> Callable[[Path, Path, Path], None]:
    def setup(tmp: Path, good: Path, run: Path) -> None:
        bad = good_copy(tmp, good)
        mask = np.full((20, 24), values[0], np.uint8)
        mask[5:15, 6:18] = values[1]
        Image.fromarray(mask, "L").save(bad / "masks" / "case03.png")

    return setup


def red_mask(tmp: Path, good: Path, run: Path) -> None:
    bad = good_copy(tmp, good)
    mask = np.zeros((20, 24, 3), np.uint8)
    mask[5:15, 6:18, 0] = 255
    Image.fromarray(mask, "RGB").save(bad / "masks" / "case03.png")


def all_masks_empty(tmp: Path, good: Path, run: Path) -> None:
    bad = good_copy(tmp, good)
    for path in (bad / "masks").iterdir():
        Image.fromarray(np.zeros((20, 24), np.uint8), "L").save(path)


def file_in(name: str) -> Callable[[Path, Path, Path], None]:
    def setup(tmp: Path, good: Path, run: Path) -> None:
        (tmp / name).mkdir(parents=True)
        (tmp / name / "keep.txt").write_text("mine")

    return setup


def a_file_named(name: str) -> Callable[[Path, Path, Path], None]:
    def setup(tmp: Path, good: Path, run: Path) -> None:
        (tmp / name).write_text("not a folder")

    return setup


def empty_folder(name: str) -> Callable[[Path, Path, Path], None]:
    def setup(tmp: Path, good: Path, run: Path) -> None:
        (tmp / name).mkdir()

    return setup


def results_in(name: str) -> Callable[[Path, Path, Path], None]:
    def setup(tmp: Path, good: Path, run: Path) -> None:
        (tmp / name).mkdir()
        (tmp / name / "metrics.json").write_text("{}")

    return setup


def failed_run(tmp: Path, good: Path, run: Path) -> None:
    (tmp / "failed_run").mkdir()
    (tmp / "failed_run" / "status.json").write_text(json.dumps({"status": "failed"}))


def images_with_a_truncated_one(tmp: Path, good: Path, run: Path) -> None:
    (tmp / "new").mkdir()
    for path in sorted((good / "images").iterdir())[:3]:
        shutil.copy(path, tmp / "new" / path.name)
    data = (good / "images" / "case11.png").read_bytes()
    (tmp / "new" / "broken.png").write_bytes(data[: len(data) // 2])


def three_masks_written(tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "masks").iterdir()) == sorted(
        p.name for p in (tmp / "new").iterdir() if p.name != "broken.png"
    )


@dataclass(frozen=True)
class Row:
    id: str
    mistake: str
    args: tuple[str, ...]
    code: int
    words: tuple[str, ...]
    via: str = "cli"  # "cli": in-process, must fail before Hydra; "script": the console script
    setup: Callable[[Path, Path, Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    then: Callable[[Path], None] | None = None  # more checks on the row's folder


ROWS = [
    # --- genseg train, as the README shows it, mistyped ---------------------------------------
    Row("train-typo-key", "misspelt key", (*TRAIN, "n_labled=9"), 2,
        ("'n_labled'", "did you mean n_labeled?")),
    Row("train-typo-key-plus", "followed Hydra's +key hint for a typo", (*TRAIN, "+n_labled=9"),
        2, ("adds a key that genseg does not read", "did you mean n_labeled?")),
    Row("train-key-without-group", "key without its group", (*TRAIN, "lr=0.01"), 2,
        ("did you mean optim.optimizer.lr?",)),
    Row("train-key-of-another-method", "a genseg key on a baseline run",
        (*TRAIN, "method.pretrain.steps=2"), 2,
        ("method.pretrain.steps is a key of method=genseg|separate",)),
    Row("train-plus-on-existing-key", "+ on a key that exists", (*TRAIN, "+seed=1"), 2,
        ("seed exists already", "without '+'")),
    Row("train-budget-word", "budget as a word", (*TRAIN, "n_labeled=ten"), 2,
        ("n_labeled=ten must be a whole number",)),
    Row("train-budget-fraction", "budget not whole", (*TRAIN, "n_labeled=9.5"), 2,
        ("n_labeled=9.5 must be a whole number",)),
    Row("train-zero-steps", "no training steps", (*TRAIN, "trainer.steps=0"), 2,
        ("trainer.steps=0 must be at least 1",)),
    Row("train-negative-checkpoint", "negative checkpoint interval",
        (*TRAIN, "trainer.checkpoint_every=-5"), 2, ("trainer.checkpoint_every=-5",)),
    Row("train-bad-resolution", "abbreviated choice", (*TRAIN, "evaluation.resolution=orig"), 2,
        ("evaluation.resolution=orig must be one of original, model",)),
    Row("train-bad-precision", "unknown precision", (*TRAIN, "trainer.precision=fp8"), 2,
        ("trainer.precision=fp8 must be one of auto, fp32, bf16, fp16",)),
    Row("train-negative-ssl-weight", "a negative pseudo-label Dice weight",
        (*TRAIN, "ssl=fixmatch", "ssl.dice_weight=-1"), 2,
        ("ssl.dice_weight=-1 must be at least 0",)),
    Row("train-ssl-objective-refuses", "feature dropout of 1 (the objective's own check)",
        (*TRAIN, "ssl=fixmatch", "ssl.feature_dropout=1"), 2,
        ("ssl=fixmatch: ", "ssl.feature_dropout in [0, 1)"), via="script"),
    Row("train-bad-keep", "a checkpoint choice that does not exist", (*TRAIN, "trainer.keep=last"),
        2, ("trainer.keep=last must be one of best_val, final",)),
    Row("train-unknown-dataset", "dataset not in the registry", (*TRAIN, "dataset=lungs"), 2,
        ("there is no dataset 'lungs'", "jsrt")),
    Row("train-unknown-backbone", "backbone not in conf/", (*TRAIN, "backbone=resnet50"), 2,
        ("there is no backbone 'resnet50'", "unet")),
    Row("train-sweep-without-m", "the README's sweep without -m",
        (*TRAIN, "n_labeled=9,35,175"), 2, ("only a sweep takes", "genseg train -m")),
    Row("train-sweep-bad-value", "one bad value in a sweep",
        ("train", "-m", "profile=debug", "n_labeled=9,nine"), 2, ("n_labeled=nine",)),
    Row("train-folder-without-root", "dataset=folder without its folder",
        (*TRAIN, "dataset=folder"), 2, ("dataset=folder needs dataset.root",)),
    Row("train-folder-missing", "dataset.root that does not exist",
        (*TRAIN, "dataset=folder", "dataset.root={tmp}/nowhere"), 2, ("nowhere/images",)),
    Row("train-no-data-dir", "GENSEG_DATA_DIR not set to the datasets",
        (*TRAIN, "dataset=jsrt"), 2, ("data directory", "GENSEG_DATA_DIR"),
        env={"GENSEG_DATA_DIR": "{tmp}/nowhere"}),
    Row("train-unwritable-output", "GENSEG_OUTPUT_DIR under a file", (*TRAIN, *ON_SET), 2,
        ("cannot write runs to",), setup=a_file_named("a_file"),
        env={"GENSEG_OUTPUT_DIR": "{tmp}/a_file/out"}),
    Row("train-over-a-finished-run", "hydra.run.dir of a finished run",
        (*TRAIN, *ON_SET, "hydra.run.dir={run}"), 2, ("holds a finished run",)),
    Row("resume-nowhere", "resume= of a folder that is not there",
        ("train", "resume={tmp}/nowhere"), 2, ("no such run folder",)),
    Row("resume-not-a-run", "resume= of a folder that is not a run",
        ("train", "resume={tmp}/empty"), 2, ("not a genseg run directory",),
        setup=empty_folder("empty")),
    Row("resume-finished", "resume= of a finished run", ("train", "resume={run}"), 2,
        ("already done", "nothing to resume")),
    Row("resume-finished-changed", "resume= with a changed key",
        ("train", "resume={run}", "optim.optimizer.lr=0.5"), 2,
        ("differs from the saved run in optim.optimizer.lr",)),
    # --- mistakes only the run's pre-flight sees (inside Hydra): no folder may stay behind ----
    Row("train-missing-mask", "an image without its mask", (*TRAIN, *ON_BAD), 2,
        ("images without a mask: case03",), via="script", setup=mask_removed),
    Row("train-mask-values", "a mask of 0/128", (*TRAIN, *ON_BAD), 2,
        ("case03.png (0, 128)", "0/255 or 0/1"), via="script", setup=mask_of_values(0, 128)),
    Row("train-red-mask", "a red RGB mask", (*TRAIN, *ON_BAD), 2,
        ("case03.png (colour (0, 0, 0), (255, 0, 0))",), via="script", setup=red_mask),
    Row("train-empty-masks", "every mask empty", (*TRAIN, *ON_BAD), 2,
        ("all 12 masks are empty",), via="script", setup=all_masks_empty),
    Row("train-grey-as-colour", "grey images, the folder's default channels=3",
        (*TRAIN, "dataset=folder", "dataset.root={set}", "n_labeled=4"), 2,
        ("images are grey but dataset.channels=3",), via="script"),
    Row("train-budget-too-small", "budget of 1", (*TRAIN, *ON_SET[:3], "n_labeled=1"), 2,
        ("n_labeled=1 is too small",), via="script"),
    Row("train-budget-too-large", "budget above the pool", (*TRAIN, *ON_SET[:3], "n_labeled=50"),
        2, ("n_labeled=50 exceeds the labeled pool",), via="script"),
    # --- genseg data --------------------------------------------------------------------------
    Row("data-check-unknown", "dataset not in the registry", ("data", "check", "lungs"), 2,
        ("unknown dataset 'lungs'",)),
    Row("data-check-folder-without-root", "folder without --root", ("data", "check", "folder"),
        2, ("--root",)),
    Row("data-check-bad-masks", "a folder with a 0/128 mask",
        ("data", "check", "folder", "--root", "{bad}"), 1,
        ("case03.png (0, 128)", "breaks the dataset contract"), setup=mask_of_values(0, 128)),
    Row("data-prepare-no-source", "--src that does not exist",
        ("data", "prepare", "kvasir", "--src", "{tmp}/nowhere", "--data-dir", "{tmp}"), 2,
        ("does not exist",)),
    Row("data-without-command", "genseg data alone", ("data",), 2, ("required",)),
    # --- genseg generate ----------------------------------------------------------------------
    Row("generate-placeholder", "the README's RUN placeholder as typed",
        ("generate", "run_dir=RUN", "n=500", "out=syn"), 2, ("RUN does not exist",)),
    Row("generate-from-a-baseline", "a run without a generator",
        ("generate", "run_dir={run}", "n=5", "out={tmp}/syn"), 2, ("has no generator",)),
    Row("generate-n-zero", "no pairs asked for",
        ("generate", "run_dir={run}", "n=0", "out={tmp}/syn"), 2, ("n=0 must be at least 1",)),
    Row("generate-n-word", "count as a word",
        ("generate", "run_dir={run}", "n=ten", "out={tmp}/syn"), 2,
        ("n=ten must be a whole number",)),
    Row("generate-format", "unknown format",
        ("generate", "run_dir={run}", "out={tmp}/syn", "format=nifti"), 2,
        ("format=nifti is not one of standard, nnunet",)),
    Row("generate-out-not-empty", "out= a folder with files",
        ("generate", "run_dir={run}", "n=2", "out={tmp}/mine"), 2, ("not empty",),
        setup=file_in("mine")),
    # --- genseg evaluate ----------------------------------------------------------------------
    Row("evaluate-placeholder", "the README's RUN placeholder as typed",
        ("evaluate", "run_dir=RUN"), 2, ("RUN does not exist",)),
    Row("evaluate-one-name", "one dataset without brackets",
        ("evaluate", "run_dir={run}", "datasets=lungs"), 2, ("unknown dataset 'lungs'",)),
    Row("evaluate-missing-folder", "a folder that is not there",
        ("evaluate", "run_dir={run}", "datasets=[/my/set]"), 2, ("/my/set does not exist",)),
    Row("evaluate-resolution", "abbreviated choice",
        ("evaluate", "run_dir={run}", "resolution=orig"), 2,
        ("resolution=orig is not one of original, model",)),
    Row("evaluate-argument-typo", "dataset= for datasets=",
        ("evaluate", "run_dir={run}", "dataset=jsrt"), 2,
        ("unknown argument 'dataset'", "did you mean datasets?")),
    Row("evaluate-out-taken", "out= holding earlier results",
        ("evaluate", "run_dir={run}", "out={tmp}/taken"), 2,
        ("already holds metrics.json", "overwrite=true"), setup=results_in("taken")),
    Row("evaluate-failed-run", "a run that failed", ("evaluate", "run_dir={tmp}/failed_run"), 2,
        ("not finished (status: failed)",), setup=failed_run),
    # --- genseg predict -----------------------------------------------------------------------
    Row("predict-no-input", "input= that does not exist",
        ("predict", "run_dir={run}", "input={tmp}/nowhere", "output={tmp}/masks"), 2,
        ("does not exist",)),
    Row("predict-empty-input", "an empty input folder",
        ("predict", "run_dir={run}", "input={tmp}/empty", "output={tmp}/masks"), 2,
        ("no images",), setup=empty_folder("empty")),
    Row("predict-output-not-empty", "output= a folder with files",
        ("predict", "run_dir={run}", "input={set}/images", "output={tmp}/mine"), 2,
        ("not empty",), setup=file_in("mine")),
    Row("predict-export", "unknown export format",
        ("predict", "run_dir={run}", "input={set}/images", "output={tmp}/m", "export=pdf"), 2,
        ("export=pdf is not one of torchscript, onnx",)),
    Row("predict-batch-size", "batch of zero",
        ("predict", "run_dir={run}", "input={set}/images", "output={tmp}/m", "batch_size=0"), 2,
        ("batch_size=0 must be at least 1",)),
    Row("predict-truncated-image", "one truncated image among good ones",
        ("predict", "run_dir={run}", "input={tmp}/new", "output={tmp}/masks"), 2,
        ("wrote 3 of 4 masks", "broken.png"), setup=images_with_a_truncated_one,
        then=three_masks_written),
    # --- genseg report and the command itself -------------------------------------------------
    Row("report-missing-sweep", "sweep_dir that does not exist",
        ("report", "sweep_dir={tmp}/nowhere"), 2, ("is not a directory",)),
    Row("report-nothing-finished", "a sweep with no finished run",
        ("report", "sweep_dir={tmp}"), 2, ("no finished runs", "status failed"),
        setup=failed_run),
    Row("stage-typo", "misspelt stage", ("evalute", "run_dir={run}"), 2,
        ("unknown stage 'evalute'", "did you mean evaluate?")),
]  # fmt: skip


# ----- the module's finished run and the runner --------------------------------------------
@pytest.fixture(scope="module")
def good_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "my_set"
    for i in range(12):
        write_pair(root, f"case{i:02d}")
    return root


@pytest.fixture(scope="module")
def finished_run(good_set: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outputs")
    args = [a.format(set=good_set) for a in (*TRAIN, *ON_SET, "trainer.steps=2")]
    result = genseg(*args, env={"GENSEG_OUTPUT_DIR": str(out)})
    assert result.returncode == 0, result.stderr
    # runs on a user folder are named after it, not all filed under runs/folder/
    (run_dir,) = (out / "runs" / "my_set" / "baseline").iterdir()
    return run_dir


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def run_digest(finished_run: Path) -> str:
    return digest(finished_run)


def reached_hydra(*args, **kwargs):
    raise AssertionError("this row reached Hydra; it must fail before (or use via='script')")


def run_in_process(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    from genseg_cli import cli
    from genseg_cli.stages import train

    monkeypatch.setattr(train.hydra, "main", reached_hydra)
    try:
        code = cli.main(args)
    except SystemExit as stop:  # argparse answers a bad `genseg data` line this way
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, good_set, finished_run, run_digest, tmp_path, capsys, monkeypatch):
    out = tmp_path / "outputs"
    if row.setup:
        row.setup(tmp_path, good_set, finished_run)

    def fill(text: str) -> str:
        return text.format(run=finished_run, set=good_set, bad=tmp_path / "bad", tmp=tmp_path)

    args = [fill(a) for a in row.args]
    env = {"GENSEG_OUTPUT_DIR": str(out), **{k: fill(v) for k, v in row.env.items()}}
    if row.via == "script":
        result = genseg(*args, env=env, cwd=tmp_path)
        code, text = result.returncode, result.stdout + result.stderr
    else:
        monkeypatch.chdir(tmp_path)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code, text = run_in_process(args, capsys, monkeypatch)
    said = " ".join(text.split())
    assert code == row.code, said
    for words in row.words:
        assert words in said, said
    assert "Traceback" not in said
    assert digest(finished_run) == run_digest  # nothing already written is touched
    left = [p.parent for p in out.rglob("status.json")] if out.is_dir() else []
    assert not left and not (out / "runs").exists()  # no run folder left behind
    if row.then:
        row.then(tmp_path)


def test_the_matrix_has_a_row_for_each_mistake():
    assert len(ROWS) >= 30 and len({r.id for r in ROWS}) == len(ROWS)


# ----- what the fixes allow -----------------------------------------------------------------
def test_evaluate_takes_one_folder_without_brackets_and_never_overwrites(
    finished_run: Path, good_set: Path, tmp_path: Path, capsys
):
    from genseg_cli import cli

    run, other = tmp_path / "run", tmp_path / "copy" / "my_set"
    shutil.copytree(finished_run, run)
    shutil.copytree(good_set, other)  # the run's own folder would be scored as its test split
    written = []
    for _ in range(2):
        assert cli.main(["evaluate", f"run_dir={run}", f"datasets={other}"]) == 0
        said = " ".join(capsys.readouterr().out.split())
        written.append(said.split("wrote ", 1)[1].split(" and ", 1)[0])
    assert written[0] != written[1]  # a new folder per call, and the command says which
    for path in map(Path, written):
        assert path.is_file() and path.parent.parent == run / "evaluate"
        assert json.loads(path.read_text())["ood"]["my_set"]["n"] == 12


def test_predict_takes_a_single_file(finished_run: Path, good_set: Path, tmp_path: Path):
    from genseg_cli import cli

    image = good_set / "images" / "case05.png"
    code = cli.main(["predict", f"run_dir={finished_run}", f"input={image}", f"output={tmp_path}"])
    assert code == 0 and [p.name for p in tmp_path.iterdir()] == ["case05.png"]
    assert Image.open(tmp_path / "case05.png").size == Image.open(image).size


def test_result_files_are_readable_as_the_umask_allows(finished_run: Path):
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("metrics.json", "status.json", "per_image.csv", "checkpoints/best.pt"):
        assert (finished_run / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
