"""`genseg report ... view=goal | view=upper_moves`: a table of its own from a report's runs,
written to <out>/<view>.md; a user's mistake is one line and exit 2, with nothing written."""

from __future__ import annotations

from pathlib import Path

from genseg_cli.cli import main
from tests.report.fake_runs import fake_run

# per seed: test Dice and (PH2 only) Dice on its out-of-domain set dermis
PH2 = {
    "baseline": [(0.80, 0.70)] * 3,
    "genseg": [(0.81, 0.65), (0.81, 0.67), (0.81, 0.75)],
    "separate": [(0.80, 0.62), (0.80, 0.64), (0.80, 0.72)],
}
BUSI = {"baseline": [0.60] * 3, "genseg": [0.65, 0.62, 0.59], "separate": [0.64, 0.65, 0.57]}


def grid(root: Path) -> Path:
    """PH2-40: genseg's test Dice wins every seed against the baseline, but the mean over its
    sets loses seeds 0 and 1 (-0.02, -0.01, +0.03); against separate it wins all three (+0.02).
    BUSI-100 (no out-of-domain set): +0.05, +0.02, -0.01 and +0.01, -0.03, +0.02."""
    for method, seeds in PH2.items():
        for seed, (dice, dermis) in enumerate(seeds):
            fake_run(
                root / f"ph2_{method}_{seed}",
                method=method,
                dataset="ph2",
                n_labeled=40,
                seed=seed,
                dice=dice,
                ood={"dermis": dermis},
            )
    for method, seeds in BUSI.items():
        for seed, dice in enumerate(seeds):
            fake_run(
                root / f"busi_{method}_{seed}",
                method=method,
                dataset="busi",
                n_labeled=100,
                seed=seed,
                dice=dice,
            )
    return root


def rows(text: str) -> dict[str, str]:
    return {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if "|" in line}


def test_goal_counts_the_datasets_won_against_both_references(tmp_path, capsys) -> None:
    runs, out = grid(tmp_path / "grid"), tmp_path / "out"
    args = [f"sweep_dir={runs}", f"out={out}", "view=goal", "reference=baseline,separate"]
    assert main(["report", *args]) == 0
    text = (out / "goal.md").read_text()
    assert text in capsys.readouterr().out
    table = rows(text)
    assert (
        table["dataset"] == "| dataset | genseg minus baseline | genseg minus separate | counts |"
    )
    assert "+0.0500, +0.0200, -0.0100 (2/3; mean +0.0200)" in table["busi-100"]
    assert table["busi-100"].endswith("| yes |")
    # judged on the mean over PH2's sets, not on its test Dice (which wins all three)
    assert "-0.0200, -0.0100, +0.0300 (1/3; mean +0.0000)" in table["ph2-40"]
    assert table["ph2-40"].endswith("| no |")
    assert "1 of 2 datasets: genseg above baseline and separate in at least 2 seeds" in text
    assert sorted(p.name for p in out.iterdir()) == ["goal.md"]  # a view writes its table only
    # wins=1: PH2 counts too
    assert main(["report", *args, "wins=1"]) == 0
    assert "2 of 2 datasets" in (out / "goal.md").read_text()


def test_goal_of_a_method_with_one_reference_missing_never_counts(tmp_path) -> None:
    runs, out = grid(tmp_path / "grid"), tmp_path / "out"
    args = [f"sweep_dir={runs}", f"out={out}", "view=goal", "reference=baseline,separate"]
    assert main(["report", *args, "method=separate"]) == 0
    busi = rows((out / "goal.md").read_text())["busi-100"]
    assert busi.endswith("| - | no |")  # separate is never paired with itself


def test_goal_mistakes_are_one_line_and_write_nothing(tmp_path, capsys) -> None:
    runs, out = grid(tmp_path / "grid"), tmp_path / "out"
    base = ["report", f"sweep_dir={runs}", f"out={out}", "view=goal"]
    assert main(base) == 2  # one reference
    assert main([*base, "reference=baseline,separate", "method=gensge"]) == 2
    for method in ("baseline", "genseg"):  # a second backbone: two pairs for one seed
        fake_run(
            runs / f"busi_{method}_r50",
            method=method,
            dataset="busi",
            n_labeled=100,
            backbone="deeplabv3",
        )
    assert main([*base, "reference=baseline,separate"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 3 and "Traceback" not in err
    assert "two references, not reference=baseline" in lines[0] and "baseline,separate" in lines[0]
    assert "no runs of method=gensge" in lines[1] and "genseg" in lines[1]
    assert "busi-100: two runs of 'genseg' for one seed" in lines[2]
    assert not out.exists()


def history(run: Path, text: str) -> None:
    (run / "history.csv").write_text(text)


def test_upper_moves_gives_each_parameters_first_and_last_value(tmp_path, capsys) -> None:
    """A lever's first and last logged value (rows where it was not logged skipped), and the
    kernel mixture's weight range at the end with its largest change from uniform."""
    runs = tmp_path / "grid"
    genseg = fake_run(runs / "ph2_method-genseg_seed0", method="genseg", dataset="ph2")
    # layer up0 mixes three kernels (start 1/3 each), layer up1 two (start 1/2 each)
    alpha = ",".join(f"alpha/up0/convT k{k}" for k in (4, 6, 8)) + ",alpha/up1/k4,alpha/up1/k6"
    history(
        genseg,
        f"step,loss/seg,lever/appearance/mix,{alpha}\n"
        "10,0.9,0.2016,0.33,0.34,0.33,0.5,0.5\n"
        "1490,0.2,0.2392,0.10,0.50,0.40,0.62,0.38\n"
        "1500,0.8,,,,,,\n",
    )
    history(fake_run(runs / "ph2_method-baseline_seed0", dataset="ph2"), "step\n10\n")
    fake_run(runs / "ph2_method-separate_seed0", method="separate", dataset="ph2")
    assert main(["report", f"sweep_dir={runs}", "view=upper_moves"]) == 0
    text = (runs / "report" / "upper_moves.md").read_text()
    assert text in capsys.readouterr().out
    table = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in text.splitlines()}
    mix = table[("ph2_method-genseg_seed0", "lever/appearance/mix")]
    assert "| 0.2016 (step 10) | 0.2392 (step 1490) |" in mix
    mixture = table[("ph2_method-genseg_seed0", "alpha (2 layers, 5 weights)")]
    assert "0.1000..0.6200 (step 1490); largest change from uniform: 0.2333" in mixture
    assert ("ph2_method-baseline_seed0", "(no upper-level parameter)") in table
    assert ("ph2_method-separate_seed0", "(no history.csv)") in table


def test_upper_moves_without_histories_is_one_line(tmp_path, capsys) -> None:
    runs = tmp_path / "grid"
    fake_run(runs / "a", method="genseg")
    assert main(["report", f"sweep_dir={runs}", "view=upper_moves"]) == 2
    history(runs / "a", "loss\n0.5\n")
    assert main(["report", f"sweep_dir={runs}", "view=upper_moves"]) == 2
    err = capsys.readouterr().err
    assert "none of the runs has a history.csv" in err and "sweep_dir=GRID" in err
    assert f"{runs / 'a' / 'history.csv'}: no step column" in err and "Traceback" not in err
    assert not (runs / "report").exists()
