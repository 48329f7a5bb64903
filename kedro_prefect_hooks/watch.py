"""Following a triggered flow run for `kedro prefect run --wait`, until it ends or --timeout.

It says, within seconds, when no worker is online for the run's pool (the run would
wait silently otherwise) and keeps waiting; it counts task runs by state on the
server (no page limit), and names the tasks that failed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kedro_prefect_hooks.progress import Display
from kedro_prefect_hooks.registration.api import PrefectApi
from kedro_prefect_hooks.registration.connection import PrefectApiError
from kedro_prefect_hooks.selection import Plan

TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
FAILED_TASKS = ["FAILED", "CRASHED"]
POLL_SECONDS = 1.0
WORKER_GRACE_SECONDS = 2.0  # a worker started a moment ago may not be online yet
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
    line: str  # the final progress line
    failed_tasks: list[str] = field(default_factory=list)
    finished: bool = True


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
    expected_total: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Poll the run once a second until it ends (or `timeout`), updating `display`."""
    start = time.monotonic()
    left_scheduled = False
    while True:
        flow_run = client.flow_run(flow_run_id)
        kind, label = state_label(flow_run)
        if kind != "SCHEDULED" and not left_scheduled:
            left_scheduled = True
            check_workers.run_started()
        if kind in TERMINAL:
            break
        started = kind not in ("SCHEDULED", "PENDING")
        completed, failed = _counts(client, flow_run_id) if started else (0, 0)
        display.update(label, completed, failed)
        waited = time.monotonic() - start
        if kind == "SCHEDULED" and waited >= WORKER_GRACE_SECONDS:
            check_workers.while_scheduled(timeout)
        if waited >= timeout:
            line = display.finish(label, completed, failed)
            return Outcome(kind, (flow_run.get("state") or {}).get("message") or "", line, finished=False)
        sleep(POLL_SECONDS)
    completed, failed = settled_counts(client, flow_run_id, kind, expected_total, sleep)
    line = display.finish(label, completed, failed)
    failed_tasks = [t["name"] for t in client.task_runs(flow_run_id, FAILED_TASKS)] if failed else []
    return Outcome(kind, (flow_run.get("state") or {}).get("message") or "", line, failed_tasks)


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
) -> None:
    """Follow the run with a progress display; on failure, name the failed tasks and the resume
    command (`resume(nodes)`); a click error unless the run completed."""
    import click

    from kedro_prefect_hooks.progress import make_display

    display = make_display(plan.total, plan.label, plan.at_most)
    check = WorkerCheck(client, pool, start_hint, display.note)
    total = None if plan.at_most else plan.total
    ui = f"{client.settings.url.removesuffix('/api')}/runs/flow-run/{flow_run_id}"
    try:
        with ctrl_c_interrupts():
            outcome = follow(client, flow_run_id, display, check, timeout, expected_total=total)
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
    if outcome.failed_tasks:
        what = plan.label.removesuffix("s") + ("s" if len(outcome.failed_tasks) > 1 else "")
        click.echo(f"Failed {what}: {', '.join(outcome.failed_tasks)}")
        nodes = plan.resume_nodes(outcome.failed_tasks)
        if nodes:
            click.echo(f"Resume from {'it' if len(nodes) == 1 else 'them'}: {resume(nodes)}")
    raise click.ClickException(
        f"{deployment} ended {outcome.state}: {outcome.message or 'no message'}; see {ui}"
    )


def start_hint(pool: str, configured_pool: str, env: str | None) -> str:
    """How to start a worker for `pool`: the plugin's commands serve the configured pool only."""
    if pool != configured_pool:
        return f"Start one with `prefect worker start --pool '{pool}'`."
    command = "kedro prefect worker start" + (f" --env {env}" if env else "")
    return (
        f"Start one in another terminal with `{command}`, or set `worker: {{start: true}}` in "
        "conf/local/prefect.yml, and any Kedro command starts one."
    )
