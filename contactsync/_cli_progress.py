"""The progress bar of ``contactsync upsert`` (imported when a run starts: rich is a
large part of start-up, and ``--help`` needs none of it)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Contacts per second over the last seconds of the run."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.0f}/s")


def progress_bar(total: int | None, *, console: Console, disable: bool) -> Progress:
    """Count, rate, contacts not written, time taken and left; shown only on a
    terminal (``disable`` hides it anyway, e.g. for ``--quiet``)."""
    return Progress(
        TextColumn("upserting"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TextColumn("{task.fields[failed]} not written"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable or not console.is_terminal,
    )
