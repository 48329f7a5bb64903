"""What `--wait` prints: a rich bar on a terminal, plain lines elsewhere; the final line once."""

from __future__ import annotations

import io

from rich.console import Console

from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
from kedro_prefect_hooks.run.report import RunReport
from kedro_prefect_hooks.trigger.progress import PlainDisplay, RichDisplay, make_display, progress_line
from kedro_prefect_hooks.trigger.selection import Plan
from kedro_prefect_hooks.trigger.watch import (
    WorkerCheck,
    ended,
    failure_lines,
    final_line,
    follow,
    settled_counts,
)


def test_plain_lines_change_with_the_run_and_the_final_line_comes_once(capsys):
    display = PlainDisplay(total=5, label="nodes")
    display.update("SCHEDULED", 0, 0)
    display.update("SCHEDULED", 0, 0)
    display.note("No worker is online")
    display.update("RUNNING", 2, 0)
    display.finish("FAILED: 3/5 nodes completed, 1 failed")
    assert capsys.readouterr().out.splitlines() == [
        "SCHEDULED: 0/5 nodes completed",
        "No worker is online",
        "RUNNING: 2/5 nodes completed",
        "FAILED: 3/5 nodes completed, 1 failed",
    ]


def test_at_timeout_the_line_in_force_is_not_printed_twice(capsys):
    display = PlainDisplay(total=5, label="nodes")
    display.update("SCHEDULED (Late)", 0, 0)
    display.finish("SCHEDULED (Late): 0/5 nodes completed")
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
    line = "COMPLETED: 12/12 nodes completed"
    display.finish(line)
    text = out.getvalue()
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


class EndedRun(LaggingCounts):
    """A run that ended: the server's counts lag; the run's report is there, or not."""

    def __init__(self, completed: list[int], report: str | None, failed_tasks: list[str] = ()):
        super().__init__(completed)
        self._report, self._failed = report, list(failed_tasks)

    def latest_artifact(self, flow_run_id: str, key: str) -> dict | None:
        assert key == "kedro-p"
        return None if self._report is None else {"data": self._report}

    def count_task_runs(self, flow_run_id: str, state_types: list[str]) -> int:
        return (
            super().count_task_runs(flow_run_id, state_types)
            if state_types == ["COMPLETED"]
            else len(self._failed)
        )

    def task_runs(self, flow_run_id: str, state_types: list[str]) -> list[dict]:
        return [{"name": name} for name in self._failed]


def report_of(completed: list[str], failed: list[str] = (), not_run: list[str] = (), **tasks) -> str:
    report = RunReport("p", None, [*completed, *failed, *not_run])
    for name in completed:
        report.started(name)
        report.finished(name, 0.1)
    for name in failed:
        report.started(name)
        report.finished(name, 0.1, RuntimeError("boom"))
    report.set_tasks(tasks)
    return report.markdown()


def test_an_ended_run_is_counted_from_its_report_not_the_lagging_server():
    """Issue 18, 6: `COMPLETED: 211/1000 nodes completed` while the server was still recording."""
    run = EndedRun([211], report_of([f"n{i}" for i in range(1000)]))
    outcome = ended(run, "id", "COMPLETED", "", Plan(1000), "kedro-p", lambda _: None)
    assert (outcome.completed, outcome.total, outcome.confirmed) == (1000, 1000, True)
    assert final_line("COMPLETED", outcome, Plan(1000)) == "COMPLETED: 1000/1000 nodes completed"


def test_without_a_report_an_unfinished_server_count_says_it_is_not_confirmed():
    naps: list[float] = []
    outcome = ended(EndedRun([211], None), "id", "COMPLETED", "", Plan(1000), "kedro-p", naps.append)
    assert (outcome.completed, outcome.confirmed) == (211, False)
    assert final_line("COMPLETED", outcome, Plan(1000)) == (
        "COMPLETED: 211/1000 nodes completed (the server's count so far: the run published no report to confirm it)"
    )
    reached = ended(EndedRun([5], None), "id", "COMPLETED", "", Plan(5), "kedro-p", naps.append)
    assert final_line("COMPLETED", reached, Plan(5)) == "COMPLETED: 5/5 nodes completed"  # all there


def test_grouped_tasks_and_only_missing_outputs_are_counted_from_the_report():
    report = report_of(["a", "b", "c"], ["d"], **{"a (+1)": ["a", "b"], "c (+1)": ["c", "d"]})
    outcome = ended(EndedRun([0], report), "id", "FAILED", "", Plan(2, "tasks"), "kedro-p", lambda _: None)
    assert final_line("FAILED", outcome, Plan(2, "tasks")) == "FAILED: 1/2 tasks completed, 1 failed"
    assert outcome.failed_names == ["d"] and outcome.failed_label == "nodes"
    at_most = Plan(None, "nodes", at_most=True)  # Kedro skipped the nodes whose outputs exist: the run knows
    outcome = ended(
        EndedRun([0], report_of(["x"])), "id", "COMPLETED", "", at_most, "kedro-p", lambda _: None
    )
    assert final_line("COMPLETED", outcome, at_most) == "COMPLETED: 1/1 nodes completed"


def test_a_failure_names_its_nodes_and_the_nodes_the_run_says_a_resume_starts_from():
    report = RunReport("p", None, ["n_src", "a_fail", "b_mid", "b_end"])
    report.started("n_src")
    report.finished("n_src", 0.1)
    report.started("a_fail")
    report.finished("a_fail", 0.1, RuntimeError("boom"))
    report.resume_from = ["a_fail", "b_mid"]
    outcome = ended(EndedRun([0], report.markdown()), "id", "FAILED", "", Plan(4), "kedro-p", lambda _: None)

    def command(nodes):
        return "kedro prefect run p --from-nodes " + ",".join(nodes)

    assert failure_lines(outcome, command) == [
        "Failed node: a_fail",
        "Resume with: kedro prefect run p --from-nodes a_fail,b_mid",
    ]

    nothing = ended(
        EndedRun([0], report_of([], ["first"])), "id", "FAILED", "", Plan(2), "kedro-p", lambda _: None
    )
    assert failure_lines(nothing, lambda nodes: f"kedro prefect run p{nodes}") == [
        "Failed node: first",
        "No node completed; run it again: kedro prefect run p[]",
    ]
    no_report = ended(EndedRun([1], None, ["t1"]), "id", "FAILED", "", Plan(2), "kedro-p", lambda _: None)
    lines = failure_lines(no_report, lambda nodes: "never")
    assert lines[0] == "Failed node: t1" and "Retry this flow run" in lines[1] and "never" not in lines[1]


class SlowThenDone:
    """A server whose first answer to a poll times out (seen in CI: `no complete answer within 2 s`)."""

    settings = None

    def __init__(self):
        self.polls = 0

    def flow_run(self, flow_run_id: str) -> dict:
        self.polls += 1
        if self.polls == 1:
            raise PrefectApiError(
                "Prefect API at http://127.0.0.1:1/api (test): no complete answer within 2 s"
            )
        return {"id": flow_run_id, "state": {"type": "COMPLETED", "name": "Completed", "message": ""}}

    def count_task_runs(self, flow_run_id: str, state_types: list[str]) -> int:
        return 3 if state_types == ["COMPLETED"] else 0


def test_a_poll_left_unanswered_is_tried_again_until_the_timeout(capsys):
    client = SlowThenDone()
    display = PlainDisplay(total=3, label="nodes")
    check = WorkerCheck(client, "pool", "", display.note)  # type: ignore[arg-type]
    outcome = follow(client, "run-1", display, check, 60, Plan(3), sleep=lambda _: None)  # type: ignore[arg-type]
    assert (outcome.state, outcome.completed, outcome.finished) == ("COMPLETED", 3, True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("no complete answer within 2 s; still following, up to 60 s (--timeout).")
    assert lines[-1] == "COMPLETED: 3/3 nodes completed"


def test_a_poll_unanswered_at_the_timeout_is_an_error():
    client = SlowThenDone()
    display = PlainDisplay(total=3, label="nodes")
    check = WorkerCheck(client, "pool", "", display.note)  # type: ignore[arg-type]
    try:
        follow(client, "run-1", display, check, 0, Plan(3), sleep=lambda _: None)  # type: ignore[arg-type]
    except PrefectApiError as exc:
        assert "no complete answer" in str(exc)
    else:
        raise AssertionError("a follow past its timeout must report the unanswered poll")
