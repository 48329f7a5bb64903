"""One process worker per project and work pool: start it once, find it, stop it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kedro_prefect_hooks.api import ApiSettings
from kedro_prefect_hooks.config import WorkerOptions
from kedro_prefect_hooks.processes import (
    Record,
    file_lock,
    is_running,
    read_record,
    start_detached,
    state_dir,
    stop,
    write_record,
)


def worker_name(package: str, pool: str) -> str:
    """The worker's name in Prefect, and the marker that identifies its process."""
    return f"kedro-{package}-{pool}"


def record_path(project_path: Path, pool: str) -> Path:
    return state_dir(project_path) / f"worker-{pool}.json"


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
    """The worker's environment: this API, and a polling interval short enough to start runs quickly."""
    env = {
        **os.environ,
        "PREFECT_API_URL": api.url,
        "PREFECT_WORKER_QUERY_SECONDS": str(options.query_seconds),
    }
    env.pop("PREFECT__FLOW_RUN_ID", None)
    return env


def ensure_worker(
    project_path: Path, package: str, pool: str, options: WorkerOptions, api: ApiSettings
) -> Record | None:
    """Start a detached worker unless this project's one is alive; returns the new record, or None.

    The lock makes concurrent Kedro sessions start one worker between them.
    """
    path = record_path(project_path, pool)
    with file_lock(path.with_suffix(".lock")):
        if is_running(read_record(path)):
            return None
        log = state_dir(project_path) / f"worker-{pool}.log"
        pid = start_detached(
            worker_command(package, pool, options), log, project_path, worker_env(api, options)
        )
        record = Record(pid=pid, marker=worker_name(package, pool), log=str(log), url=api.url)
        write_record(path, record)
        return record


def running_workers(project_path: Path) -> dict[str, Record]:
    """This project's live workers by pool name."""
    found = {}
    for path in sorted(state_dir(project_path).glob("worker-*.json")):
        record = read_record(path)
        if is_running(record):
            found[path.stem.removeprefix("worker-")] = record
    return found


def stop_worker(project_path: Path, pool: str, timeout: float = 15) -> str:
    """Stop the worker this project started for `pool`; gracefully, then forcefully."""
    path = record_path(project_path, pool)
    record = read_record(path)
    outcome = stop(record, timeout) if record else "not running"
    path.unlink(missing_ok=True)
    return outcome
