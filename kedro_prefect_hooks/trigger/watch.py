"""Following a triggered flow run for `kedro prefect run --wait`, until it ends or --timeout.

It says, within seconds, when no worker is online for the run's pool (the run would
wait silently otherwise) and keeps waiting; it counts task runs by state on the
server (no page limit) while the run goes on. Once it ended, the counts, the failed
nodes and where a resume starts come from the run's own report: the server records
task runs from events, minutes behind the run on a busy server.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kedro_prefect_hooks.prefect_api.client import PrefectApi
from kedro_prefect_hooks.prefect_api.errors import ApiRefused, PrefectApiError
from kedro_prefect_hooks.prefect_api.settings import ui_url
from kedro_prefect_hooks.run.report import ReportSummary, read_summary, sentence
from kedro_prefect_hooks.trigger.progress import Display, progress_line
from kedro_prefect_hooks.trigger.selection import Plan

TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
FAILED_TASKS = ["FAILED", "CRASHED"]
POLL_SECONDS = 1.0
WORKER_GRACE_SECONDS = 2.0  # a worker started a moment ago may not be online yet
CHILD_LOOK_SECONDS = 5.0  # how often a running run's child runs (node tags' pools) are checked for a worker
# Task runs reach the server a moment after the flow run's end (its task-run recorder
# lags under load). A count is settled by 3 equal reads in a row (10 s at most); for a
# completed run whose total is known, by reaching it, or by 20 equal reads (the worker's
# code may have other nodes than this checkout), 30 s at most. A read every 0.5 s.
SETTLE_READS, STEADY_READS = 20, 3
COMPLETE_READS, COMPLETE_STEADY_READS = 60, 20


@dataclass
class Outcome:
    state: str  # a TERMINAL state type, or the state still in force at --timeout
    message: str
    completed: int
    failed: int
    total: int | None
    confirmed: bool = False  # the counts are the run's own (its report), not the server's so far
    failed_names: list[str] = field(default_factory=list)
    failed_label: str = "nodes"  # what failed_names are: nodes (the report) or the plan's tasks
    resume_from: list[str] | None = None  # where the run says a resume starts; None: not known
    finished: bool = True
    line: str = ""  # the final progress line


def state_label(flow_run: dict) -> tuple[str, str]:
    """(type, label): `SCHEDULED (Late)` says more than `SCHEDULED`."""
    state = flow_run.get("state") or {}
    kind = state.get("type") or "PENDING"
    name = state.get("name") or ""
    return kind, kind if not name or name.upper() == kind else f"{kind} ({name})"


class WorkerCheck:
    """Says once that no worker is online for the pool (or that it is paused), and once when one comes."""

    def __init__(self, client: PrefectApi, pool: str, start_hint: str, note: Callable[[str], None]):
        self._client, self._pool, self._hint, self._note = client, pool, start_hint, note
        self._said: set[str] = set()

    def while_scheduled(self, timeout: float) -> None:
        """Called while the run waits for a worker."""
        online = self._online()
        if online is None:
            return  # a busy server; the next poll asks again
        if not online and "missing" not in self._said:
            self._say(
                "missing",
                f"No worker is online for work pool '{self._pool}' at {self._client.settings.url}, so the run "
                f"waits. {self._hint} Still waiting, up to {timeout:g} s (--timeout).",
            )
        elif online:
            self._came(online)

    def for_pool(self, pool: str) -> WorkerCheck:
        """The same check for another pool: one a child run waits on (a node tag's work_pool)."""
        return WorkerCheck(
            self._client, pool, f"Start one with `prefect worker start --pool '{pool}'`.", self._note
        )

    def run_started(self) -> None:
        """Called once the run left SCHEDULED: a worker took it, which closes a "no worker" note."""
        if "missing" in self._said:
            self._came(self._online() or ["a worker"])

    def _online(self) -> list[str] | None:
        try:
            workers = self._client.pool_workers(self._pool)
            pool = self._client.work_pool(self._pool)
        except PrefectApiError:
            return None
        if pool and pool.get("is_paused") and "paused" not in self._said:
            self._say(
                "paused",
                f"Work pool '{self._pool}' is paused: no worker gets its runs. "
                f"Resume it with `prefect work-pool resume '{self._pool}'`.",
            )
        return sorted(w["name"] for w in workers if w.get("status") == "ONLINE")

    def _came(self, online: list[str]) -> None:
        if "missing" in self._said and "online" not in self._said:
            self._say("online", f"A worker is online for work pool '{self._pool}' now: {', '.join(online)}.")

    def _say(self, key: str, text: str) -> None:
        self._said.add(key)
        self._note(text)


def follow(
    client: PrefectApi,
    flow_run_id: str,
    display: Display,
    check_workers: WorkerCheck,
    timeout: float,
    plan: Plan,
    report_key: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Poll the run once a second until it ends (or `timeout`), updating `display`; the final
    counts are the run's own, from its report (`report_key`), when it published one."""
    start = time.monotonic()
    left_scheduled = False
    unanswered = False
    child_checks: dict[str, WorkerCheck] = {}  # pool -> its check, for child runs that wait
    next_child_look = CHILD_LOOK_SECONDS
    while True:
        try:
            flow_run = client.flow_run(flow_run_id)
            kind, label = state_label(flow_run)
            message = (flow_run.get("state") or {}).get("message") or ""
            started = kind not in ("SCHEDULED", "PENDING", *TERMINAL)
            completed, failed = _counts(client, flow_run_id) if started else (0, 0)
        except ApiRefused:
            raise
        except PrefectApiError as exc:
            # A slow or restarting server costs a poll, not the follow: --timeout is the user's limit.
            if time.monotonic() - start >= timeout:
                raise
            if not unanswered:
                display.note(f"{exc}; still following, up to {timeout:g} s (--timeout).")
            unanswered = True
            sleep(POLL_SECONDS)
            continue
        if kind != "SCHEDULED" and not left_scheduled:
            left_scheduled = True
            check_workers.run_started()
        if kind in TERMINAL:
            break
        display.update(label, completed, failed)
        waited = time.monotonic() - start
        if kind == "SCHEDULED" and waited >= WORKER_GRACE_SECONDS:
            check_workers.while_scheduled(timeout)
        if kind == "RUNNING" and waited >= next_child_look:
            next_child_look = waited + CHILD_LOOK_SECONDS
            for pool in _waiting_child_pools(client, flow_run_id):
                child_checks.setdefault(pool, check_workers.for_pool(pool)).while_scheduled(timeout)
        if waited >= timeout:
            outcome = Outcome(kind, message, completed, failed, plan.total, finished=False)
            outcome.line = final_line(label, outcome, plan)
            display.finish(outcome.line)
            return outcome
        sleep(POLL_SECONDS)
    outcome = ended(client, flow_run_id, kind, message, plan, report_key, sleep)
    outcome.line = final_line(label, outcome, plan)
    display.finish(outcome.line)
    return outcome


def _waiting_child_pools(client: PrefectApi, flow_run_id: str) -> list[str]:
    try:
        return client.waiting_subflow_pools(flow_run_id)
    except PrefectApiError:
        return []  # a busy server: the next look asks again


def ended(
    client: PrefectApi,
    flow_run_id: str,
    kind: str,
    message: str,
    plan: Plan,
    report_key: str | None,
    sleep: Callable[[float], None],
) -> Outcome:
    """What an ended run did: from its report, written before its final state; else the server's
    counts once they settle, which a busy server may still be recording."""
    summary = _summary(client, flow_run_id, report_key) if report_key else None
    if summary is not None:
        completed, failed, total = summary.counts(plan.label)
        return Outcome(
            kind, message, completed, failed, total, True, summary.failed_nodes, "nodes", summary.resume_from
        )
    completed, failed = settled_counts(client, flow_run_id, kind, None if plan.at_most else plan.total, sleep)
    names = [t["name"] for t in client.task_runs(flow_run_id, FAILED_TASKS)] if failed else []
    return Outcome(kind, message, completed, failed, plan.total, False, names, plan.label)


def _summary(client: PrefectApi, flow_run_id: str, key: str) -> ReportSummary | None:
    try:
        artifact = client.latest_artifact(flow_run_id, key)
    except PrefectApiError:
        return None
    data = (artifact or {}).get("data")
    return read_summary(data) if isinstance(data, str) else None


def final_line(label: str, outcome: Outcome, plan: Plan) -> str:
    """The last progress line; it says so when an ended run's count is the server's, unconfirmed."""
    line = progress_line(
        label,
        outcome.completed,
        outcome.failed,
        outcome.total,
        plan.label,
        plan.at_most and not outcome.confirmed,
    )
    reached = (
        outcome.state == "COMPLETED" and outcome.total is not None and outcome.completed == outcome.total
    )
    if outcome.finished and not outcome.confirmed and not reached:
        line += " (the server's count so far: the run published no report to confirm it)"
    return line


def _counts(client: PrefectApi, flow_run_id: str) -> tuple[int, int]:
    return client.count_task_runs(flow_run_id, ["COMPLETED"]), client.count_task_runs(
        flow_run_id, FAILED_TASKS
    )


def settled_counts(
    client: PrefectApi, flow_run_id: str, kind: str, expected: int | None, sleep: Callable[[float], None]
) -> tuple[int, int]:
    """The counts once a completed run has all its tasks, or once they stop changing."""
    target = expected if kind == "COMPLETED" else None  # every task of a completed run completed
    steady = STEADY_READS if target is None else COMPLETE_STEADY_READS
    reads: list[tuple[int, int]] = []
    for _ in range(SETTLE_READS if target is None else COMPLETE_READS):
        reads.append(_counts(client, flow_run_id))
        if target is not None and reads[-1][0] >= target:
            break
        if len(reads) >= steady and len(set(reads[-steady:])) == 1:
            break
        sleep(0.5)
    return reads[-1]


@contextmanager
def ctrl_c_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt while following, whatever SIGINT handler was inherited or
    installed by a library; the handler in force before is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def wait_and_report(
    client: PrefectApi,
    flow_run_id: str,
    deployment: str,
    plan: Plan,
    pool: str,
    start_hint: str,
    timeout: float,
    resume: Callable[[list[str]], str],
    report_key: str | None = None,
) -> None:
    """Follow the run with a progress display; on failure, name what failed and the command that
    resumes it (`resume(nodes)`, from the nodes the run named); a click error unless it completed."""
    import click

    from kedro_prefect_hooks.trigger.progress import make_display

    display = make_display(plan.total, plan.label, plan.at_most)
    check = WorkerCheck(client, pool, start_hint, display.note)
    ui = ui_url(client.settings.url, flow_run_id)
    try:
        with ctrl_c_interrupts():
            outcome = follow(client, flow_run_id, display, check, timeout, plan, report_key)
    except KeyboardInterrupt:
        display.close()
        click.echo(f"Stopped following the run; it goes on: {ui}")
        raise SystemExit(130) from None
    except BaseException:
        display.close()
        raise
    if not outcome.finished:
        raise click.ClickException(f"still {outcome.line} after {timeout:g} s; see {ui}")
    if outcome.state == "COMPLETED":
        return
    for line in failure_lines(outcome, resume):
        click.echo(line)
    raise click.ClickException(f"{deployment} ended {outcome.state}: {sentence(outcome.message)} See {ui}")


def failure_lines(outcome: Outcome, resume: Callable[[list[str]], str]) -> list[str]:
    """What failed and how to go on: the nodes Kedro's rule restarts, which the run named."""
    if not outcome.failed_names:
        return []
    many = len(outcome.failed_names) > 1
    lines = [
        f"Failed {outcome.failed_label.removesuffix('s')}{'s' if many else ''}: {', '.join(outcome.failed_names)}"
    ]
    if outcome.resume_from:
        lines.append(f"Resume with: {resume(outcome.resume_from)}")
    elif outcome.confirmed:
        lines.append(f"No node completed; run it again: {resume([])}")
    else:
        lines.append(
            "To resume, Retry this flow run (the nodes that completed are skipped): the run published no "
            "report naming the nodes a resume command starts from."
        )
    return lines


def start_hint(pool: str, configured_pool: str, env: str | None) -> str:
    """How to start a worker for `pool`: the plugin's commands serve the configured pool only."""
    if pool != configured_pool:
        return f"Start one with `prefect worker start --pool '{pool}'`."
    command = "kedro prefect worker start" + (f" --env {env}" if env else "")
    return (
        f"Start one in another terminal with `{command}`, or set `worker: {{start: true}}` in "
        "conf/local/prefect.yml, and any Kedro command starts one."
    )
