"""Views of a report: one table of its own instead of the report's tables (`genseg report ...
view=NAME`), written to `<out>/<NAME>.md` and printed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from genseg_cli.report.goal import goal_markdown
from genseg_cli.report.upper_moves import upper_moves_markdown

TABLES = "tables"  # the report itself: summary, paired differences, efficiency, figures
VIEWS = (TABLES, "goal", "upper_moves")


def write_view(
    view: str, runs: pd.DataFrame, out: Path, method: str, reference: str, wins: int
) -> tuple[str, Path]:
    """(the view's Markdown, where it was written). Every check runs before `out` is made."""
    if view == "goal":
        text = goal_markdown(runs, method, reference, wins)
    else:
        text = upper_moves_markdown(list(runs.run_dir))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{view}.md"
    path.write_text(text)
    return text, path
