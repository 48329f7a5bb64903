"""How `kedro prefect run --wait` shows a run's progress: a rich bar on a terminal, plain lines elsewhere.

Plain lines (CI logs, pipes, click's test runner) move no cursor: one line per change,
and the final line once.
"""

from __future__ import annotations

from typing import Protocol

import click


def progress_line(
    state: str, completed: int, failed: int, total: int | None, label: str, at_most: bool
) -> str:
    """`RUNNING: 3/12 nodes completed, 1 failed`."""
    if total is None:
        counted = f"{completed} {label} completed"
    elif at_most:
        counted = f"{completed} {label} completed (at most {total}: --only-missing-outputs skips the rest)"
    else:
        counted = f"{completed}/{total} {label} completed"
    return f"{state}: {counted}" + (f", {failed} failed" if failed else "")


class Display(Protocol):
    def update(self, state: str, completed: int, failed: int) -> None: ...

    def note(self, text: str) -> None: ...

    def finish(self, line: str) -> None: ...

    def close(self) -> None: ...


class PlainDisplay:
    """A line each time the state or a count changes."""

    def __init__(self, total: int | None, label: str, at_most: bool = False):
        self._shape = (total, label, at_most)
        self._last: str | None = None

    def update(self, state: str, completed: int, failed: int) -> None:
        line = progress_line(state, completed, failed, *self._shape)
        if line != self._last:
            click.echo(line)
            self._last = line

    def note(self, text: str) -> None:
        click.echo(text)

    def finish(self, line: str) -> None:
        """The final line (the run's own count once it ended), unless the last line said it."""
        if line != self._last:  # at --timeout, the last line may already say it
            click.echo(line)

    def close(self) -> None:
        pass


class RichDisplay:
    """A live bar with the state, the count and the time taken; notes print above it."""

    def __init__(self, console, total: int | None, label: str, at_most: bool = False):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._console = console
        counted = "{task.completed}" + ("/{task.total}" if total is not None and not at_most else "")
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn(f"{counted} {label}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # the final line replaces it
        )
        self._task = self._progress.add_task("SCHEDULED", total=None if at_most else total)
        self._progress.start()

    def update(self, state: str, completed: int, failed: int) -> None:
        description = state + (f", {failed} failed" if failed else "")
        self._progress.update(self._task, description=description, completed=completed)

    def note(self, text: str) -> None:
        self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def finish(self, line: str) -> None:
        self._progress.stop()
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Take the bar down (Ctrl-C, an API error), so the terminal is left as it was."""
        self._progress.stop()


def make_display(total: int | None, label: str, at_most: bool = False, console=None) -> Display:
    """The rich bar when stdout is an interactive terminal, else plain lines."""
    from rich.console import Console

    console = console or Console()
    if console.is_interactive:
        return RichDisplay(console, total, label, at_most)
    return PlainDisplay(total, label, at_most)
