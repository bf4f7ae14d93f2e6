"""Report grouping over hand-written run folders: shared overrides, setups (profile/experiment),
duplicate runs, start weights, and label efficiency on variants."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from genseg_cli.core.errors import GensegError
from genseg_cli.report.collect import collect_runs
from genseg_cli.report.summary import aggregate, efficiency, paired, paired_differences
from genseg_cli.stages.report import main
from tests.report.fake_runs import OMIT, collect, fake_run

STEPS = "trainer.steps=300"


def grid(root: Path, overrides: list[str], seeds=(0, 1), budgets=(9, 35)) -> Path:
    """baseline and genseg at each budget and seed, every run with `overrides`."""
    for method, gain in (("baseline", 0.0), ("genseg", 0.02)):
        for n in budgets:
            for seed in seeds:
                dice = 0.7 + n / 1000 + gain + seed / 100
                fake_run(
                    root / f"{method}_n{n}_s{seed}",
                    method=method,
                    n_labeled=n,
                    seed=seed,
                    dice=dice,
                    overrides=overrides,
                )
    return root


def test_shared_overrides_go_to_the_header_and_not_the_labels(tmp_path: Path, capsys):
    sweep = grid(tmp_path / "sweep", [STEPS, "trainer.progress=false"])
    collected = collect_runs(sweep)
    assert set(collected.runs.method) == {"baseline", "genseg"}
    assert set(collected.runs.variant) == {""}
    assert collected.shared.overrides == (STEPS,)

    assert main([f"sweep_dir={sweep}", f"out={tmp_path / 'out'}"]) == 0
    for name in ("summary.md", "paired.md"):
        text = (tmp_path / "out" / name).read_text()
        assert text.splitlines()[0] == f"shared overrides: {STEPS}", name
        assert "[trainer.steps" not in text, name
    assert f"shared overrides: {STEPS}" in capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(summary) == 4 and (summary.n_seeds == 2).all()  # nothing split off as a variant


def test_a_run_without_a_shared_override_makes_it_a_variant(tmp_path: Path):
    sweep = grid(tmp_path / "sweep", [STEPS])
    fake_run(sweep / "plain", method="genseg", n_labeled=9, seed=0, dice=0.5)  # default steps
    fake_run(sweep / "other", method="genseg", n_labeled=9, seed=0, overrides=["trainer.steps=500"])
    collected = collect_runs(sweep)
    assert collected.shared.overrides == ()
    assert set(collected.runs.method) == {
        f"baseline [{STEPS}]",
        f"genseg [{STEPS}]",
        "genseg",
        "genseg [trainer.steps=500]",
    }
    summary = aggregate(collected.runs).set_index(["method", "n_labeled"])
    assert summary.loc[(f"genseg [{STEPS}]", 9), "n_seeds"] == 2
    assert summary.loc[("genseg", 9), "test_dice_mean"] == 0.5  # not averaged with the others


def test_self_training_seeds_with_their_own_teacher_folders_average_together(tmp_path: Path):
    sweep = tmp_path / "sweep"
    for seed in (0, 1, 2):
        teacher = fake_run(sweep / f"baseline_s{seed}", seed=seed, dice=0.70)
        fake_run(
            sweep / f"self_training_s{seed}",
            method="baseline+self_training",
            seed=seed,
            dice=0.72,
            overrides=["ssl=self_training", f"ssl.teacher_run={teacher}"],
        )
    summary = aggregate(collect_runs(sweep).runs).set_index("method")
    label = "baseline+self_training [ssl.teacher_run=baseline]"
    assert summary.loc[label, "n_seeds"] == 3
    pairs = paired(collect_runs(sweep).runs, reference="baseline").set_index("method")
    assert pairs.loc[label, "n_pairs"] == 3


def test_runs_of_two_setups_are_never_averaged_or_paired_together(tmp_path: Path):
    """A paper-profile run and a CPU-profile run of one method, budget and seed stay apart."""
    sweep = tmp_path / "sweep"
    fake_run(sweep / "paper_b", method="baseline", dice=0.90, overrides=["profile=paper"])
    fake_run(sweep / "paper_g", method="genseg", dice=0.95, overrides=["profile=paper"])
    fake_run(sweep / "cpu_b", method="baseline", dice=0.70)  # no profile: the default, cpu
    fake_run(sweep / "cpu_g", method="genseg", dice=0.72, overrides=["profile=cpu"])
    fake_run(sweep / "exp_g", method="genseg", dice=0.60, overrides=["experiment=jsrt_paper"])
    collected = collect_runs(sweep)
    runs = collected.runs
    assert set(runs.method) == {"baseline", "genseg"}  # the setup is a column, not a variant
    assert set(runs.setup) == {"profile=paper", "profile=cpu", "experiment=jsrt_paper"}
    assert not collected.shared.one_setup

    summary = aggregate(runs).set_index(["setup", "method"])
    assert (summary.n_seeds == 1).all() and len(summary) == 5
    assert summary.loc[("profile=paper", "genseg"), "test_dice_mean"] == 0.95
    assert summary.loc[("profile=cpu", "genseg"), "test_dice_mean"] == 0.72

    diffs = paired_differences(runs, "baseline").set_index("setup")
    assert len(diffs) == 2  # the experiment's genseg has no baseline of its own setup
    assert diffs.loc["profile=paper", "test_dice"] == pytest.approx(0.05)
    assert diffs.loc["profile=cpu", "test_dice"] == pytest.approx(0.02)

    assert main([f"sweep_dir={sweep}", f"out={tmp_path / 'out'}"]) == 0
    table = (tmp_path / "out" / "summary.md").read_text().splitlines()
    assert any(line.startswith("| dataset | backbone | setup |") for line in table)


def test_one_setup_goes_to_the_header(tmp_path: Path):
    sweep = grid(tmp_path / "sweep", ["profile=paper"])
    assert main([f"sweep_dir={sweep}", f"out={tmp_path / 'out'}"]) == 0
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "setup: profile=paper" in text.splitlines()[:6]
    assert "| setup |" not in text and "profile=paper |" not in text
    assert set(pd.read_csv(tmp_path / "out" / "runs.csv").setup) == {"profile=paper"}


def test_duplicate_runs_are_an_error_naming_both_folders(tmp_path: Path):
    sweep = grid(tmp_path / "sweep", [])
    # the same config and seed again, in another folder (a progress bar changes no result)
    copy = fake_run(sweep / "again" / "genseg_n9_s1", method="genseg", seed=1, overrides=[])
    with pytest.raises(GensegError) as err:
        collect_runs(sweep)
    message = str(err.value)
    assert str(sweep / "genseg_n9_s1") in message and str(copy) in message
    assert "duplicates=newest" in message and "\n" not in message
    with pytest.raises(GensegError, match="duplicates=newest"):
        main([f"sweep_dir={sweep}", f"out={tmp_path / 'out'}"])


@pytest.mark.parametrize("newer", ["first", "second"])
def test_duplicates_newest_keeps_the_run_written_last(tmp_path: Path, newer: str):
    now = time.time()
    times = (now, now - 3600) if newer == "first" else (now - 3600, now)
    a = fake_run(tmp_path / "a", method="genseg", dice=0.6, mtime=times[0])
    # the same config: a progress bar changes no result
    progress = ["trainer.progress=false"]
    b = fake_run(tmp_path / "b", method="genseg", dice=0.8, overrides=progress, mtime=times[1])
    runs, skipped = collect(tmp_path, duplicates="newest")
    kept, dropped = (a, b) if newer == "first" else (b, a)
    assert runs.run_dir.tolist() == [str(kept)]
    assert [s.path for s in skipped] == [dropped]
    assert skipped[0].reason.startswith(f"duplicate of {kept}")

    out = tmp_path / "out"
    assert main([f"sweep_dir={tmp_path}", f"out={out}", "duplicates=newest"]) == 0
    assert pd.read_csv(out / "skipped.csv").path.tolist() == [str(dropped)]


def curve_runs(root: Path, method: str, points: dict[int, float], overrides=()) -> None:
    """One run per budget (seed 0) with the given test Dice."""
    tag = "_".join(o.replace("=", "") for o in overrides)
    for n, dice in points.items():
        folder = root / f"{method}{tag}_n{n}"
        fake_run(folder, method=method, n_labeled=n, dice=dice, overrides=list(overrides))


def test_efficiency_on_a_sweep_where_every_run_shares_overrides(tmp_path: Path):
    """Like the paper's ISIC grid (trainer.steps=10000 for every run)."""
    shared = ["profile=paper", "trainer.steps=10000"]
    curve_runs(tmp_path, "baseline", {9: 0.5, 35: 0.75}, shared)
    curve_runs(tmp_path, "genseg", {9: 0.625, 35: 0.9}, shared)
    table = efficiency(aggregate(collect(tmp_path)[0]), "genseg", "baseline")
    assert table.method.tolist() == ["genseg", "genseg"]
    assert table.factor.tolist()[0] == pytest.approx(22 / 9)  # 9 + 0.125 / 0.25 * 26 labels
    assert table.factor.tolist()[1] == "> max"


def test_efficiency_of_variants_uses_the_reference_of_the_same_variant(tmp_path: Path):
    curve_runs(tmp_path, "baseline", {9: 0.5, 35: 0.75})
    curve_runs(tmp_path, "baseline", {9: 0.6, 35: 0.8}, ["x=1"])
    curve_runs(tmp_path, "baseline", {9: 0.6}, ["z=3"])  # a reference measured at one budget
    curve_runs(tmp_path, "genseg", {9: 0.625})
    curve_runs(tmp_path, "genseg", {9: 0.75}, ["x=1"])
    curve_runs(tmp_path, "genseg", {9: 0.625}, ["y=2"])  # no baseline [y=2]: the default one
    curve_runs(tmp_path, "genseg", {9: 0.7}, ["z=3"])
    table = efficiency(aggregate(collect(tmp_path)[0]), "genseg", "baseline").set_index("method")
    assert table.loc["genseg", "reference"] == "baseline"
    assert table.loc["genseg", "factor"] == pytest.approx(22 / 9)
    assert table.loc["genseg [x=1]", "reference"] == "baseline [x=1]"
    assert table.loc["genseg [x=1]", "factor"] == pytest.approx(28.5 / 9)  # 9 + .15 / .2 * 26
    assert table.loc["genseg [y=2]", "reference"] == "baseline"
    assert table.loc["genseg [y=2]", "factor"] == pytest.approx(22 / 9)
    # one reference budget: no factor, never a fall back to another curve
    assert table.loc["genseg [z=3]", "reference"] == "baseline [z=3]"
    assert table.loc["genseg [z=3]", "factor"] == "n/a: one budget"


def test_start_weights_keep_scratch_and_imagenet_runs_apart(tmp_path: Path):
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        fake_run(sweep / f"scratch{seed}", seed=seed, dice=0.7)
        imagenet = ["backbone.encoder_weights=imagenet"]
        fake_run(
            sweep / f"in{seed}", seed=seed, dice=0.8, start_weights="imagenet", overrides=imagenet
        )
    # a run from before metrics.json recorded its start weights: config.yaml says
    old = fake_run(sweep / "old", seed=2, dice=0.8, start_weights=OMIT)
    (old / "config.yaml").write_text("backbone:\n  name: unet\n  encoder_weights: imagenet\n")
    collected = collect_runs(sweep)
    runs = collected.runs.set_index("run_dir")
    assert runs.loc[str(old), "start_weights"] == "imagenet"
    assert runs.loc[str(sweep / "scratch0"), "start_weights"] == "none"
    assert set(runs.method) == {"baseline", "baseline [start_weights=imagenet]"}
    summary = aggregate(collected.runs).set_index("method")
    assert summary.loc["baseline", "n_seeds"] == 2
    assert summary.loc["baseline", "test_dice_mean"] == pytest.approx(0.7)
    assert summary.loc["baseline [start_weights=imagenet]", "n_seeds"] == 3
    assert summary.loc["baseline [start_weights=imagenet]", "test_dice_mean"] == pytest.approx(0.8)


def test_start_weights_shared_by_every_run_go_to_the_header(tmp_path: Path):
    for seed in (0, 1):
        fake_run(tmp_path / f"in{seed}", seed=seed, start_weights="imagenet")
    collected = collect_runs(tmp_path)
    assert set(collected.runs.method) == {"baseline"}
    assert "start weights: imagenet" in collected.shared.header()
    assert set(collected.runs.start_weights) == {"imagenet"}


def test_paired_table_keeps_setups_apart(tmp_path: Path):
    for profile in ("paper", "cpu"):
        grid(tmp_path / profile, [f"profile={profile}"])
    table = paired(collect(tmp_path)[0], "baseline")
    assert sorted(set(table.setup)) == ["profile=cpu", "profile=paper"]
    assert (table.n_pairs == 2).all() and len(table) == 4  # 2 setups x 2 budgets


def test_a_variant_of_the_reference_method_is_paired_with_its_default_run(tmp_path: Path):
    """A lever screen's question: each `genseg [lever]` run minus default genseg, same seed."""
    lever = "mlo.learn_synthetic_weight=true"
    for seed in (0, 1, 2):
        fake_run(tmp_path / f"b{seed}", method="baseline", seed=seed, dice=0.80)
        fake_run(tmp_path / f"g{seed}", method="genseg", seed=seed, dice=0.70 + seed / 100)
        fake_run(
            tmp_path / f"l{seed}",
            method="genseg",
            seed=seed,
            dice=0.75 + seed / 100,
            overrides=[lever],
        )
    diffs = paired_differences(collect(tmp_path)[0], "genseg").set_index("method")
    levered = diffs.loc[f"genseg [{lever}]"]
    assert sorted(levered.seed) == [0, 1, 2] and (levered.reference == "genseg").all()
    assert levered.test_dice.round(6).tolist() == [0.05, 0.05, 0.05]  # never paired with itself
    assert sorted(diffs.loc["baseline"].test_dice.round(6)) == [0.08, 0.09, 0.1]
