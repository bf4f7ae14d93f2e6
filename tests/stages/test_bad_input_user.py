"""The bad-input matrix, second part: mistakes whose first answer was a silent wrong result (a
16-bit image read clipped, a split.csv typo that drops an id, a mask in the alpha channel), a run
folder shared by two processes, a user's folder taken for a run, a sweep that hid its failures.

Each row runs through the first matrix's runner (`tests.stages.test_bad_input.test_bad_input`):
the exit code, the words of the one-line message, no traceback, the module's finished run
unchanged and no run folder left behind. The tests after the table check the values and files
that a row cannot.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.stages import test_bad_input as table
from tests.stages.test_bad_input import ON_BAD, ON_SET, TRAIN, Row, good_copy
from tests.stages.test_cli import genseg

# the first matrix's module fixtures: a good dataset folder and a finished run trained on it
good_set, finished_run, run_digest = table.good_set, table.finished_run, table.run_digest

HOLDERS: list[
    subprocess.Popen
] = []  # processes holding a run folder's lock, ended after the module
HOLD = (
    "import sys, time; from pathlib import Path; "
    "from genseg_cli.stages.run_folder import lock_run_folder; "
    "lock_run_folder(Path(sys.argv[1])); print('locked', flush=True); time.sleep(120)"
)


@pytest.fixture(scope="module", autouse=True)
def end_holders():
    yield
    for process in HOLDERS:
        process.kill()
        process.wait()


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that holds `folder`'s lock, as a training run does."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    HOLDERS.append(process)
    assert process.stdout.readline().strip() == "locked"
    return process


# ----- broken inputs (each writes under the row's folder) -------------------------------------
def split_csv(*changes: tuple[str, str]):
    """A copy of the good set with a split.csv (train/val), with `changes` as (id, split) rows
    replacing or adding to the right ones."""

    def setup(tmp: Path, good: Path, run: Path) -> None:
        bad = good_copy(tmp, good)
        rows = {p.stem: ("val" if i % 4 == 0 else "train") for i, p in
                enumerate(sorted((bad / "images").iterdir()))}  # fmt: skip
        rows.update(dict(changes))
        lines = ["id,split", *(f"{k},{v}" for k, v in rows.items())]
        (bad / "split.csv").write_text("\n".join(lines) + "\n")

    return setup


def good_copy_of_set(tmp: Path, good: Path, run: Path) -> None:
    good_copy(tmp, good)


def alpha_mask(tmp: Path, good: Path, run: Path) -> None:
    """case03's mask drawn in the alpha channel of a black RGBA picture."""
    bad = good_copy(tmp, good)
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[5:15, 6:18, 3] = 255
    Image.fromarray(rgba, "RGBA").save(bad / "masks" / "case03.png")


def one_colour_image(tmp: Path, good: Path, run: Path) -> None:
    bad = good_copy(tmp, good)
    grey = np.asarray(Image.open(bad / "images" / "case03.png"))
    Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(bad / "images" / "case03.png")


def sixteen_bit(tmp: Path, good: Path, run: Path) -> None:
    """The good set with every image 16-bit (values of 12 bits, as X-rays store them)."""
    bad = good_copy(tmp, good)
    for path in (bad / "images").iterdir():
        wide = np.asarray(Image.open(path)).astype(np.uint16) * 16
        Image.fromarray(wide).save(path)


def user_folder(tmp: Path, good: Path, run: Path) -> None:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "config.yaml").write_text("my: own\n")
    (tmp / "mine" / "notes.txt").write_text("mine")


def running_copy(tmp: Path, run: Path) -> Path:
    """A copy of the finished run that says it is running (as one does while it trains)."""
    busy = tmp / "busy"
    shutil.copytree(run, busy)
    (busy / "status.json").write_text(json.dumps({"status": "running"}))
    return busy


def busy_run(tmp: Path, good: Path, run: Path) -> None:
    hold_lock(running_copy(tmp, run))


def killed_run(tmp: Path, good: Path, run: Path) -> None:
    """A run whose process was killed (SIGKILL): its lock file stays, locking nothing."""
    busy = running_copy(tmp, run)
    (busy / "status.json").write_text(json.dumps({"status": "interrupted"}))
    holder = hold_lock(busy)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (busy / ".genseg.lock").is_file()


def a_file_named(name: str):
    def setup(tmp: Path, good: Path, run: Path) -> None:
        (tmp / name).write_text("not a folder")

    return setup


def a_volume(tmp: Path, good: Path, run: Path) -> None:
    (tmp / "scan.nii.gz").write_bytes(b"\x1f\x8b not really a volume")


def read_only_evaluations(tmp: Path, good: Path, run: Path) -> None:
    """A copy of the run where evaluate/ cannot be made (a file holds its name)."""
    shutil.copytree(run, tmp / "ro")
    (tmp / "ro" / "evaluate").write_text("in the way")


# ----- checks after a row ---------------------------------------------------------------------
def user_files_kept(tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "mine").iterdir()) == ["config.yaml", "notes.txt"]
    assert (tmp / "mine" / "config.yaml").read_text() == "my: own\n"


def own_folder_scored_in_domain(tmp: Path) -> None:
    metrics = json.loads((tmp / "ev" / "metrics.json").read_text())
    assert metrics["ood"] == {} and metrics["test"]["n"] == 3  # the test split, not all 12


def resumed_and_unlocked(tmp: Path) -> None:
    assert json.loads((tmp / "busy" / "status.json").read_text())["status"] == "done"
    assert not (tmp / "busy" / ".genseg.lock").exists()


def busy_run_untouched(tmp: Path) -> None:
    assert json.loads((tmp / "busy" / "status.json").read_text()) == {"status": "running"}


CHECK = ("data", "check", "folder", "--root", "{bad}")
# a committed grid with out-of-domain sets: its report is wider than 80 columns
OOD_GRID = Path(__file__).parents[2] / "results" / "genseg_t1_vs_baselines_jsrt_ph2" / "runs.csv"
SWEEP = ("train", "-m", *TRAIN[1:], *ON_SET[:3], "trainer.steps=2", "hydra.sweep.dir={tmp}/sw")
ROWS = [
    # --- silent wrong results: now refused, or read right and said ----------------------------
    Row("data-check-16-bit", "16-bit grey images", CHECK, 0,
        ("12 images are grey of more than 8 bits", "stretched from its own min..max",
         "folder is valid"), setup=sixteen_bit),
    Row("data-check-split-typo", "a typo in split.csv", CHECK, 1,
        ("split.csv line 5: 'tset' for case03 is not a split of 'folder'",
         "use one of train, val"), setup=split_csv(("case03", "tset"))),
    Row("train-split-typo", "a typo in split.csv", (*TRAIN, *ON_BAD), 2,
        ("split.csv line 5: 'tset' for case03 is not a split of 'folder'",
         "use one of train, val"), via="script", setup=split_csv(("case03", "tset"))),
    Row("data-check-split-unknown-id", "split.csv names an id with no image", CHECK, 1,
        ("split.csv line 14: the id 'NOSUCH' has no image and mask",),
        setup=split_csv(("NOSUCH", "train"))),
    Row("train-split-unknown-id", "split.csv names an id with no image", (*TRAIN, *ON_BAD), 2,
        ("split.csv line 14: the id 'NOSUCH' has no image and mask",), via="script",
        setup=split_csv(("NOSUCH", "train"))),
    Row("data-check-alpha-mask", "a mask drawn in the alpha channel", CHECK, 1,
        ("case03.png (transparent pixels: the mask may be in the alpha channel)",),
        setup=alpha_mask),
    Row("train-alpha-mask", "a mask drawn in the alpha channel", (*TRAIN, *ON_BAD), 2,
        ("case03.png (transparent pixels",), via="script", setup=alpha_mask),
    Row("data-check-one-colour-image", "one colour image among grey ones", CHECK, 1,
        ("1 colour image among 11 grey ones (case03.png)",), setup=one_colour_image),
    Row("train-one-colour-image-grey", "one colour image, channels=1", (*TRAIN, *ON_BAD), 2,
        ("1 colour image among 11 grey ones (case03.png)",), via="script",
        setup=one_colour_image),
    Row("train-one-colour-image-colour", "one colour image, channels=3",
        (*TRAIN, *ON_BAD[:2], "dataset.channels=3", "n_labeled=4"), 2,
        ("1 colour image among 11 grey ones (case03.png)",), via="script",
        setup=one_colour_image),
    Row("evaluate-own-folder", "the run's own dataset folder as an out-of-domain set",
        ("evaluate", "run_dir={run}", "datasets=[{set}]", "out={tmp}/ev"), 0, ("test",),
        then=own_folder_scored_in_domain),
    Row("predict-threshold-above-one", "a threshold above 1",
        ("predict", "run_dir={run}", "input={set}/images", "output={tmp}/m", "threshold=1.5"), 2,
        ("threshold=1.5 must lie strictly between 0 and 1",)),
    Row("predict-threshold-zero", "a threshold of 0 (every pixel foreground)",
        ("predict", "run_dir={run}", "input={set}/images", "output={tmp}/m", "threshold=0"), 2,
        ("threshold=0 must lie strictly between 0 and 1",)),
    # --- a run folder is one process's, and never a user's own folder -------------------------
    Row("train-into-a-busy-folder", "hydra.run.dir of a run that is training",
        (*TRAIN, *ON_SET, "hydra.run.dir={tmp}/busy"), 2,
        ("{tmp}/busy is in use by another genseg run (pid",), setup=busy_run,
        then=busy_run_untouched),
    Row("resume-while-running", "resume= of a run that is training", ("train", "resume={tmp}/busy"),
        2, ("{tmp}/busy is in use by another genseg run (pid",), setup=busy_run,
        then=busy_run_untouched),
    Row("resume-after-a-kill", "resume= of a killed run: its lock file is stale",
        ("train", "resume={tmp}/busy"), 0, (), via="script", setup=killed_run,
        then=resumed_and_unlocked),
    Row("train-into-a-user-folder", "hydra.run.dir of a folder of the user's files",
        (*TRAIN, *ON_SET, "hydra.run.dir={tmp}/mine"), 2,
        ("holds files that are not a run's (config.yaml, notes.txt)",), setup=user_folder,
        then=user_files_kept),
    Row("sweep-with-a-failed-run", "a sweep in which one run fails", (*SWEEP, "n_labeled=4,50"),
        1, ("1 run of the sweep failed", "n_labeled=50 exceeds the labeled pool"), via="script"),
    # --- paths and names as a user types them -------------------------------------------------
    Row("train-path-non-ascii", "a non-ASCII letter in a path",
        (*TRAIN, *ON_SET[:1], "dataset.root={tmp}/donnée", *ON_SET[2:]), 2,
        ("Hydra reads 'é' only inside quotes", "'dataset.root=\"{tmp}/donnée\"'")),
    Row("train-path-tilde", "a path starting with ~",
        (*TRAIN, *ON_SET[:1], "dataset.root=~/my_set", *ON_SET[2:]), 2,
        ("Hydra reads '~' only inside quotes", "'dataset.root=\"~/my_set\"'")),
    Row("train-data-dir-is-a-dataset", "GENSEG_DATA_DIR set to a dataset folder itself",
        (*TRAIN, "dataset=jsrt"), 2,
        ("data directory {tmp}/bad is a dataset folder itself (it holds images/)",
         "e.g. {tmp}"), setup=good_copy_of_set, env={"GENSEG_DATA_DIR": "{tmp}/bad"}),
    Row("data-prepare-typo", "a misspelt dataset name",
        ("data", "prepare", "kvasr", "--src", "{tmp}", "--data-dir", "{tmp}"), 2,
        ("unknown dataset 'kvasr' (did you mean kvasir?)",)),
    Row("resume-failed-in-pre-flight", "resume= of a run that never started training",
        ("train", "resume={tmp}/failed_run"), 2,
        ("failed before training started", "nothing to resume"), setup=table.failed_run),
    Row("predict-volume-on-a-2d-run", "a NIfTI volume given to a 2D run",
        ("predict", "run_dir={run}", "input={tmp}/scan.nii.gz", "output={tmp}/m"), 2,
        ("input={tmp}/scan.nii.gz is not one of the images (.png, .jpg, ...)",),
        setup=a_volume),
    # --- what a narrow terminal shows --------------------------------------------------------
    Row("report-at-80-columns", "a report with out-of-domain sets at 80 columns",
        ("report", f"runs_csv={OOD_GRID}", "out={tmp}/r"), 0,
        ("dermquest Dice", "0.5091 ± 0.0921", "Δ dermquest Dice", "-0.0393 ± 0.0829 (1/3)"),
        env={"COLUMNS": "80"}),
    # --- results that cannot be written: said before the work -------------------------------
    Row("evaluate-read-only-run", "a run folder where evaluate/ cannot be written",
        ("evaluate", "run_dir={tmp}/ro"), 2,
        ("cannot write to {tmp}/ro/evaluate/", "is not a folder"),
        setup=read_only_evaluations),
    Row("evaluate-unwritable-out", "out= under a file",
        ("evaluate", "run_dir={run}", "out={tmp}/a_file/ev"), 2,
        ("cannot write to {tmp}/a_file/ev", "is not a folder"), setup=a_file_named("a_file")),
    Row("predict-unwritable-output", "output= under a file",
        ("predict", "run_dir={run}", "input={set}/images", "output={tmp}/a_file/m"), 2,
        ("cannot write to {tmp}/a_file/m",), setup=a_file_named("a_file")),
]  # fmt: skip


def filled(row: Row, tmp: Path) -> Row:
    """The row with {tmp} filled in its words (the runner fills only its arguments)."""
    from dataclasses import replace

    return replace(row, words=tuple(w.replace("{tmp}", str(tmp)) for w in row.words))


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, good_set, finished_run, run_digest, tmp_path, capsys, monkeypatch):
    table.test_bad_input(
        filled(row, tmp_path), good_set, finished_run, run_digest, tmp_path, capsys, monkeypatch
    )


def test_the_rows_are_new_and_distinct():
    ids = [r.id for r in ROWS]
    assert len(set(ids)) == len(ids) and not set(ids) & {r.id for r in table.ROWS}


# ----- values a row cannot see --------------------------------------------------------------
def test_16_bit_grey_is_stretched_by_its_own_range_not_clipped(tmp_path: Path):
    from genseg_cli.data.io import read_image

    values = np.linspace(1000, 4000, 20 * 24).reshape(20, 24).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "x.png")
    assert Image.open(tmp_path / "x.png").mode == "I;16"
    grey = read_image(tmp_path / "x.png", 1)[..., 0]
    expected = np.rint((values - 1000.0) * 255 / 3000).astype(np.uint8)
    assert grey.min() == 0 and grey.max() == 255 and np.array_equal(grey, expected)
    assert (grey == 255).mean() < 0.01  # PIL's convert("L") made nearly every pixel 255
    colour = read_image(tmp_path / "x.png", 3)
    assert colour.shape == (20, 24, 3) and all(
        np.array_equal(colour[..., c], grey) for c in range(3)
    )


def test_training_and_predict_read_16_bit_as_its_8_bit_equivalent(
    good_set: Path,
    finished_run: Path,
    tmp_path: Path,
):
    from genseg_cli.data.images import IMAGES, load_pairs
    from genseg_cli.data.io import stretch_to_uint8
    from genseg_cli.data.spec import DataSpec
    from genseg_cli.engine.restore import read_run

    sixteen_bit(tmp_path, good_set, finished_run)
    bad, wide = tmp_path / "bad", tmp_path / "bad" / "images" / "case05.png"
    expected = stretch_to_uint8(np.asarray(Image.open(wide)))
    (sample,) = load_pairs(bad, ["case05"], 1)  # what training reads
    assert np.array_equal(sample.image[..., 0], expected)
    spec = DataSpec.from_config(read_run(finished_run)[1])
    assert np.array_equal(IMAGES.read_input(wide, spec).image[..., 0], expected)  # predict's
    # and the command: a 16-bit input gets the mask of its stretched 8-bit copy
    (tmp_path / "eight").mkdir()
    Image.fromarray(expected).save(tmp_path / "eight" / "case05.png")
    for name, source in (("m16", wide), ("m8", tmp_path / "eight" / "case05.png")):
        result = genseg("predict", f"run_dir={finished_run}", f"input={source}",
                        f"output={tmp_path / name}")  # fmt: skip
        assert result.returncode == 0, result.stderr
    m16 = np.asarray(Image.open(tmp_path / "m16" / "case05.png"))
    assert np.array_equal(m16, np.asarray(Image.open(tmp_path / "m8" / "case05.png")))


def test_a_killed_holder_leaves_a_lock_the_next_run_takes(tmp_path: Path):
    from genseg_cli.core.errors import GensegError
    from genseg_cli.stages.run_folder import LOCK, lock_run_folder, release_run_folder

    holder = hold_lock(tmp_path)
    info = json.loads((tmp_path / LOCK).read_text())
    assert info["pid"] == holder.pid and info["host"]
    with pytest.raises(GensegError, match=f"pid {holder.pid} on"):
        lock_run_folder(tmp_path)
    holder.kill()
    holder.wait()
    lock_run_folder(tmp_path)  # the kernel let go of the dead process's lock
    lock_run_folder(tmp_path)  # and this process may ask again
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    release_run_folder(tmp_path)
    assert not (tmp_path / LOCK).exists()


def test_two_runs_into_one_new_folder_train_one_at_a_time(good_set: Path, tmp_path: Path):
    """Two `genseg train` started together into one new hydra.run.dir: one trains, the other
    is refused (the folder did not exist before either started)."""
    run_dir = tmp_path / "run"
    args = [a.format(set=good_set) for a in (*TRAIN, *ON_SET, "trainer.steps=2")]
    env = {**os.environ, "GENSEG_OUTPUT_DIR": str(tmp_path / "out"), "COLUMNS": "200"}
    command = [str(Path(sys.executable).parent / "genseg"), *args, f"hydra.run.dir={run_dir}"]
    started = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read()) for p in started]
    said = " ".join(text for _, text in results)
    assert sorted(code for code, _ in results) == [0, 2], said
    # refused while the other trained, or after it had finished
    assert "in use by another genseg run" in said or "holds a finished run" in said
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    assert not (run_dir / ".genseg.lock").exists()


def test_evaluate_device_names_its_own_argument(finished_run: Path, capsys):
    import torch

    from genseg_cli import cli

    if torch.cuda.is_available():
        pytest.skip("CUDA is here: device=cuda is a good value")
    assert cli.main(["evaluate", f"run_dir={finished_run}", "device=cuda"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "genseg evaluate: device=cuda but CUDA is not available" in said
    assert "trainer.device" not in said


def test_3d_backbone_message_names_every_3d_backbone():
    from omegaconf import OmegaConf

    from genseg_cli.core.errors import GensegError
    from genseg_cli.nets.segmenters import network_config

    with pytest.raises(GensegError, match="backbone=swin_unetr or backbone=unet$"):
        network_config(OmegaConf.create({"name": "deeplabv3", "model": {}}), 3)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_evaluate_refuses_a_read_only_run_before_scoring(finished_run: Path, tmp_path, capsys):
    from genseg_cli import cli

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    run.chmod(0o555)
    try:
        assert cli.main(["evaluate", f"run_dir={run}"]) == 2
    finally:
        run.chmod(0o755)
    assert f"cannot write to {run}/evaluate/" in " ".join(capsys.readouterr().err.split())
