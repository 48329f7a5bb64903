"""What `--wait` prints: a rich bar on a terminal, plain lines elsewhere; the final line once."""

from __future__ import annotations

import io

from rich.console import Console

from kedro_prefect_hooks.progress import PlainDisplay, RichDisplay, make_display, progress_line
from kedro_prefect_hooks.watch import settled_counts


def test_plain_lines_change_with_the_run_and_the_final_line_comes_once(capsys):
    display = PlainDisplay(total=5, label="nodes")
    display.update("SCHEDULED", 0, 0)
    display.update("SCHEDULED", 0, 0)
    display.note("No worker is online")
    display.update("RUNNING", 2, 0)
    assert display.finish("FAILED", 3, 1) == "FAILED: 3/5 nodes completed, 1 failed"
    assert capsys.readouterr().out.splitlines() == [
        "SCHEDULED: 0/5 nodes completed",
        "No worker is online",
        "RUNNING: 2/5 nodes completed",
        "FAILED: 3/5 nodes completed, 1 failed",
    ]


def test_at_timeout_the_line_in_force_is_not_printed_twice(capsys):
    display = PlainDisplay(total=5, label="nodes")
    display.update("SCHEDULED (Late)", 0, 0)
    assert display.finish("SCHEDULED (Late)", 0, 0) == "SCHEDULED (Late): 0/5 nodes completed"
    assert capsys.readouterr().out.splitlines() == ["SCHEDULED (Late): 0/5 nodes completed"]


def test_counts_without_a_known_total_or_with_only_missing_outputs():
    assert progress_line("RUNNING", 2, 0, None, "nodes", False) == "RUNNING: 2 nodes completed"
    assert progress_line("COMPLETED", 2, 0, 5, "nodes", True).startswith(
        "COMPLETED: 2 nodes completed (at most 5"
    )


def test_a_terminal_gets_a_bar_that_the_final_line_replaces():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, force_interactive=True, width=100)
    display = make_display(12, "nodes", console=console)
    assert isinstance(display, RichDisplay)
    display.update("RUNNING", 4, 0)
    display.note("A worker is online for work pool 'kedro' now: w1.")
    line = display.finish("COMPLETED", 12, 0)
    text = out.getvalue()
    assert line == "COMPLETED: 12/12 nodes completed"
    assert text.count(line) == 1 and "A worker is online" in text
    assert "━" in text  # the bar was drawn


def test_no_terminal_means_plain_lines():
    console = Console(file=io.StringIO())
    assert isinstance(make_display(3, "nodes", console=console), PlainDisplay)


class LaggingCounts:
    """The server's task-run counts as the task-run recorder catches up after the flow run ended."""

    def __init__(self, completed: list[int]):
        self._completed = iter(completed)
        self._last = 0

    def count_task_runs(self, flow_run_id: str, state_types: list[str]) -> int:
        if state_types == ["COMPLETED"]:
            self._last = next(self._completed, self._last)
            return self._last
        return 0


def test_a_completed_run_with_a_known_total_waits_for_all_its_task_runs():
    """Seen in CI under load: `COMPLETED: 176/201 nodes completed` (three equal reads of a lagging count)."""
    counts = LaggingCounts([150, 176, 176, 176, 176, 190, 201])
    naps: list[float] = []
    assert settled_counts(counts, "run", "COMPLETED", 201, naps.append) == (201, 0)
    assert len(naps) == 6
    naps.clear()  # a total that never comes (the worker's code has fewer nodes): 10 s of equal reads
    assert settled_counts(LaggingCounts([190]), "run", "COMPLETED", 201, naps.append) == (190, 0)
    assert len(naps) == 19


def test_without_a_known_total_three_equal_reads_settle_the_count():
    counts = LaggingCounts([150, 176, 176, 176, 190])
    assert settled_counts(counts, "run", "COMPLETED", None, lambda _: None) == (176, 0)
    counts = LaggingCounts([3, 4, 4, 4, 5])
    assert settled_counts(counts, "run", "FAILED", 10, lambda _: None) == (4, 0)
