"""What `--wait` prints: a rich bar on a terminal, plain lines elsewhere; the final line once."""

from __future__ import annotations

import io

from rich.console import Console

from kedro_prefect_hooks.progress import PlainDisplay, RichDisplay, make_display, progress_line


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
