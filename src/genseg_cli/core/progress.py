"""A rich progress bar for training: step, loss, validation Dice, it/s and ETA."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def training_progress(enabled: bool = True) -> Progress:
    """Progress with fields `loss` and `val` to update with `progress.update(task, loss=..)`."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val Dice {task.fields[val]}"),
        TextColumn("{task.fields[speed]} it/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def item_progress(enabled: bool = True) -> Progress:
    """Progress over items (images, volumes, files) for the stages after training, on stderr so
    that the result tables on stdout stay clean."""
    from rich.console import Console

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )
