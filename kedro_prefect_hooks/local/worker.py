"""One process worker per project and work pool: start it once, find it, stop it.

A worker is reused only while it serves the API the session uses, and it is
reported started only once Prefect sees it online: one that dies at start (bad
credentials, a broken install) is a warning with its last log lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from kedro_prefect_hooks.config import WorkerOptions
from kedro_prefect_hooks.local.processes import (
    Record,
    file_lock,
    is_running,
    read_record,
    sigint_reset,
    start_detached,
    stop,
    write_record,
)
from kedro_prefect_hooks.local.state import file_name, state_dir
from kedro_prefect_hooks.prefect_api.client import PrefectApi
from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
from kedro_prefect_hooks.prefect_api.settings import ApiSettings


def worker_name(package: str, pool: str) -> str:
    """The worker's name in Prefect, and the marker that identifies its process."""
    return f"kedro-{package}-{pool}"


class WorkerStartError(RuntimeError):
    """The worker process ended while starting; the message has its last log lines."""


def record_path(project_path: Path, pool: str) -> Path:
    """Pool names may hold any character Prefect allows; on disk they are %-encoded, and a long
    one is shortened with a hash (file names have 255 bytes): the record holds the full name."""
    return state_dir(project_path) / file_name(f"worker-{pool}", ".json")


def worker_command(package: str, pool: str, options: WorkerOptions) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "process",
        "--name",
        worker_name(package, pool),
    ]
    if options.limit:
        command += ["--limit", str(options.limit)]
    return command


def worker_env(api: ApiSettings, options: WorkerOptions) -> dict[str, str]:
    """The worker's environment: this API with the session's credentials, and quick polling."""
    env = dict(os.environ)
    for inherited in ("PREFECT__FLOW_RUN_ID", "PREFECT_API_AUTH_STRING", "PREFECT_API_KEY"):
        env.pop(inherited, None)
    env.update(api.worker_environment())
    env["PREFECT_WORKER_QUERY_SECONDS"] = str(options.query_seconds)
    return env


def ensure_worker(
    project_path: Path, package: str, pool: str, options: WorkerOptions, api: ApiSettings
) -> tuple[Record | None, str | None]:
    """Start a detached worker unless this project's one serves `api`: (new record or None, a note).

    The lock makes concurrent Kedro sessions start one worker between them. A
    worker polling another API (the project switched servers) is stopped first,
    and the note says so. Raises WorkerStartError if the new worker dies at start
    (twice, when it replaces one: a replacement started just after a stop was seen,
    rarely, to die of a SIGINT while importing prefect).
    """
    path = record_path(project_path, pool)
    with file_lock(path.with_suffix(".lock")):
        running = read_record(path)
        note = None
        if is_running(running):
            if running.url == api.url:
                return None, None
            note = f"stopped the worker for {running.url} ({stop(running, timeout=10)})"
        try:
            record, online = _start(project_path, package, pool, options, api, path)
        except WorkerStartError as exc:
            if note is None:
                raise
            try:
                time.sleep(1)
                record, online = _start(project_path, package, pool, options, api, path)
            except WorkerStartError:
                raise WorkerStartError(f"{note}; {exc}") from None
        if not online:
            note = "; ".join(filter(None, [note, "not online in Prefect yet, see its log"]))
        return record, note


def _start(
    project_path: Path, package: str, pool: str, options: WorkerOptions, api: ApiSettings, path: Path
) -> tuple[Record, bool]:
    """Start the worker, record it, and wait until Prefect lists it online: (record, online)."""
    log = state_dir(project_path) / file_name(f"worker-{pool}", ".log")
    process = start_detached(
        worker_command(package, pool, options), log, project_path, worker_env(api, options)
    )
    record = Record(pid=process.pid, marker=worker_name(package, pool), log=str(log), url=api.url, name=pool)
    write_record(path, record)
    online = _wait_online(process, record, api, pool, worker_name(package, pool), options.start_wait_seconds)
    return record, online


def _wait_online(
    process: subprocess.Popen, record: Record, api: ApiSettings, pool: str, name: str, wait: float
) -> bool:
    """Until Prefect lists the worker ONLINE; raises WorkerStartError if its process ends first.

    Whether it lives is asked of the process itself (we started it), not of /proc: its
    command line may not be readable yet.
    """
    client = PrefectApi(api, timeout=5)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = Path(record.log)
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise WorkerStartError(
                f"the worker for pool '{pool}' exited while starting: {' / '.join(tail) or 'no output'} "
                f"(log: {record.log})"
            )
        try:
            if any(w.get("name") == name and w.get("status") == "ONLINE" for w in client.pool_workers(pool)):
                return True
        except PrefectApiError:
            pass  # the server is slow; the process check above still tells a dead worker
        time.sleep(0.5)
    return False


def running_workers(project_path: Path) -> dict[str, Record]:
    """This project's live workers by pool name."""
    found = {}
    for path in sorted(state_dir(project_path).glob("worker-*.json")):
        record = read_record(path)
        if is_running(record):
            found[record.name or unquote(path.stem.removeprefix("worker-"))] = record
    return found


def stop_worker(project_path: Path, pool: str, timeout: float = 15, client: PrefectApi | None = None) -> str:
    """Stop the worker this project started for `pool`; gracefully, then forcefully.

    With `client` for the API the worker served, the stopped worker also leaves the
    pool's list there: Prefect would show it ONLINE for about 90 s more, and
    `kedro prefect run --wait` would not say that no worker is online.
    """
    path = record_path(project_path, pool)
    record = read_record(path)
    outcome = stop(record, timeout) if record else "not running"
    path.unlink(missing_ok=True)
    if record and outcome != "not running" and client and client.settings.url == record.url:
        try:
            client.forget_worker(pool, record.marker)
        except PrefectApiError as exc:
            outcome += f" (Prefect may list it as online for about 90 s: {exc})"
    return outcome


def run_in_foreground(
    project_path: Path,
    package: str,
    pool: str,
    api: ApiSettings,
    options: WorkerOptions,
    starting: Callable[[], None] = lambda: None,
) -> int | None:
    """`kedro prefect worker start`: the worker as a child in this terminal, until it ends.

    Recorded like a background one, so that the hook does not start a second and
    `kedro prefect worker stop` finds it. Returns the exit code when the worker failed,
    None when it was stopped (Ctrl-C, SIGTERM from a service manager, `worker stop`).
    Raises WorkerStartError when this project's worker for the pool already runs; `starting`
    is called just before the worker starts (to say so).
    """
    path = record_path(project_path, pool)
    with file_lock(path.with_suffix(".lock")):  # the hook takes it too before starting one
        if is_running(running := read_record(path)):
            raise WorkerStartError(
                f"A worker for pool '{pool}' already runs (pid {running.pid}); "
                "stop it first with `kedro prefect worker stop`."
            )
        starting()
        process = subprocess.Popen(
            worker_command(package, pool, options),
            cwd=project_path,
            env=worker_env(api, options),
            preexec_fn=sigint_reset(),  # Ctrl-C and `kedro prefect worker stop` must reach it
        )
        write_record(
            path, Record(pid=process.pid, marker=worker_name(package, pool), log="(terminal)", url=api.url)
        )
    stopped = []

    def stop_on_request(*_: object) -> None:
        # A service manager stops us with SIGTERM: pass it on as the Ctrl-C the worker handles best.
        stopped.append(True)
        process.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, stop_on_request)
    try:
        process.wait()
    except KeyboardInterrupt:  # the worker got the terminal's SIGINT too
        stopped.append(True)
        process.wait()
    finally:
        path.unlink(missing_ok=True)
    # Stopped by a signal (here, or `kedro prefect worker stop` on the worker itself) is a clean end.
    signalled = {-signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGINT}
    if process.returncode != 0 and not stopped and process.returncode not in signalled:
        return process.returncode
    return None
