"""The upper-moves view of a report: how far the upper level moved each run's parameters.

`genseg report sweep_dir=GRID view=upper_moves`: per run, every `lever/<name>/<parameter>` and
`mlo/synthetic_weight` (learned lambda) column of its history.csv, first and last logged value;
the kernel mixtures (`alpha/<layer>/<op>`, softmax weights, uniform within a layer at the start)
as the weights' range at the last logged step and the largest change of one weight. A lever that
helped but never moved is a fixed augmentation, not a learned one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from genseg_cli.core.errors import GensegError

NAMED_PREFIXES = ("lever/", "mlo/synthetic_weight")
NONE = ("(no upper-level parameter)", "-", "-")


def moves(history: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(parameter, first logged, last logged) rows of one run's upper-level parameters."""
    rows = []
    for column in history.columns:
        if column.startswith(NAMED_PREFIXES):
            logged = history[["step", column]].dropna()
            if logged.empty:
                continue
            first, last = logged.iloc[0], logged.iloc[-1]
            rows.append(
                (
                    column,
                    f"{first[column]:.4f} (step {int(first.step)})",
                    f"{last[column]:.4f} (step {int(last.step)})",
                )
            )
    alpha = [c for c in history.columns if c.startswith("alpha/")]
    logged = history[["step", *alpha]].dropna() if alpha else pd.DataFrame()
    if not logged.empty:
        first, last = logged[alpha].iloc[0], logged[alpha].iloc[-1]
        layer_of = {c: c.rsplit("/", 1)[0] for c in alpha}
        ops = Counter(layer_of.values())
        uniform = pd.Series({c: 1 / ops[layer_of[c]] for c in alpha})  # a layer's start weights
        rows.append(
            (
                f"alpha ({len(ops)} layers, {len(alpha)} weights)",
                f"{first.min():.4f}..{first.max():.4f} (step {int(logged.step.iloc[0])})",
                f"{last.min():.4f}..{last.max():.4f} (step {int(logged.step.iloc[-1])}); "
                f"largest change from uniform: {(last - uniform).abs().max():.4f}",
            )
        )
    return rows


def read_history(run_dir: Path) -> pd.DataFrame | None:
    """A run's history.csv (None when it has none); a one-line error when it is unreadable."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    try:
        history = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise GensegError(f"{path}: cannot read it ({err})") from err
    if "step" not in history:
        raise GensegError(f"{path}: no step column; is it a genseg run's history?")
    return history


def upper_moves_markdown(run_dirs: list[str]) -> str:
    """The table (Markdown) of every run's upper-level moves, in the order given."""
    histories = {Path(d): read_history(Path(d)) for d in run_dirs}
    if not any(h is not None for h in histories.values()):
        raise GensegError(
            "none of the runs has a history.csv (a runs_csv's run_dir folders must still "
            "exist); give sweep_dir=GRID, the folder holding the runs"
        )
    lines = ["| run | parameter | first logged | last logged |", "|---|---|---|---|"]
    for run_dir, history in histories.items():
        rows = [("(no history.csv)", "-", "-")] if history is None else moves(history) or [NONE]
        lines += [f"| {run_dir.name} | {p} | {first} | {last} |" for p, first, last in rows]
    return "\n".join(lines) + "\n"
