"""A local Prefect server (SQLite, 127.0.0.1): for tests, and per project for users.

`start_server` keeps the process as a child (tests, benchmarks). `start_local_server`
detaches it and records it under `<project>/.kedro-prefect/`, so the hook can use it
when no API is configured, and `kedro prefect server stop` can stop it later.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kedro_prefect_hooks.local.processes import (
    Record,
    file_lock,
    is_running,
    read_record,
    start_detached,
    stop,
    write_private,
    write_record,
)
from kedro_prefect_hooks.local.state import state_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_healthy(api_url: str, timeout: float = 1.0) -> bool:
    """One plain GET on <api>/health: answers in milliseconds, unlike Prefect's retrying client.

    Healthy means Prefect's own answer (200, `true`): a port may answer with something else
    (another program, a server half up), and what is not HTTP raises http.client's errors.
    """
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200 and response.read().strip() == b"true"
    except (OSError, http.client.HTTPException):  # URLError is an OSError
        return False


def server_install_problems(versions: dict[str, str | None] | None = None) -> list[str]:
    """What stops a local `prefect server start` from working here, each with its fix.

    Measured: prefect 3.8's server breaks with fastapi >= 0.151 (`Body(min_items=...)`),
    and its scheduler fails on every loop with SQLAlchemy 2.1, so schedules never
    create runs. prefect 3.9 pins fastapi itself and schedules on SQLAlchemy 2.1.
    """
    versions = versions if versions is not None else _installed(("prefect", "fastapi", "sqlalchemy"))
    prefect = _release(versions.get("prefect"))
    if prefect is None or prefect >= (3, 9):
        return []
    fix = "pip install 'kedro-prefect-hooks[server]' (or upgrade to prefect 3.9 on Python 3.11+)"
    problems = []
    if (fastapi := _release(versions.get("fastapi"))) and fastapi >= (0, 151):
        problems.append(
            f"prefect {versions['prefect']}'s server does not start with fastapi "
            f"{versions['fastapi']} (it needs fastapi<0.151): {fix}"
        )
    if (sqlalchemy := _release(versions.get("sqlalchemy"))) and sqlalchemy >= (2, 1):
        problems.append(
            f"prefect {versions['prefect']}'s scheduler fails with SQLAlchemy "
            f"{versions['sqlalchemy']}, so schedules would never create runs "
            f"(it needs sqlalchemy<2.1): {fix}"
        )
    return problems


def _installed(names: tuple[str, ...]) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _release(version: str | None) -> tuple[int, ...] | None:
    """(major, minor) of a version string; None when not installed or unreadable."""
    parts = (version or "").split(".")[:2]
    return tuple(int(p) for p in parts) if len(parts) == 2 and all(p.isdigit() for p in parts) else None


def _server_command(port: int) -> list[str]:
    return [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]


def _server_env(prefect_home: Path, port: int, ui: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": str(ui).lower(),
        # Without it the UI calls the API on the default port 4200, whatever --port says.
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
    }
    env.pop("PREFECT_API_URL", None)
    return env


def _wait_healthy(api_url: str, alive: Callable[[], bool], log_path: Path, wait: float) -> None:
    """Until the API answers; it takes 8-18 s here. Raises with the log's tail if it dies."""
    deadline = time.monotonic() + wait
    while not is_healthy(api_url):
        if not alive() or time.monotonic() > deadline:
            tail = log_path.read_text()[-2000:] if log_path.exists() else ""
            raise RuntimeError(f"prefect server did not start; see {log_path}:\n{tail}")
        time.sleep(0.3)


def start_server(
    prefect_home: Path,
    port: int | None = None,
    ui: bool = False,
    wait: float = 120,
    settings: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """`prefect server start` as a child process, with extra Prefect `settings`; returns it and its API URL."""
    if problems := server_install_problems():
        raise RuntimeError("; ".join(problems))
    port = port or free_port()
    prefect_home.mkdir(parents=True, exist_ok=True)
    log_path = prefect_home / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            _server_command(port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**_server_env(prefect_home, port, ui), **(settings or {})},
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(api_url, lambda: process.poll() is None, log_path, wait)
    except RuntimeError:
        process.kill()
        raise
    return process, api_url


def local_record_path(project_path: Path) -> Path:
    return state_dir(project_path) / "server.json"


def local_server(project_path: Path) -> Record | None:
    """This project's local server, if it runs; no network call."""
    record = read_record(local_record_path(project_path))
    return record if is_running(record) else None


def local_server_url(project_path: Path) -> str | None:
    """The API URL of this project's local server, if it runs."""
    record = local_server(project_path)
    return record.url if record else None


def start_local_server(project_path: Path, port: int | None = None, wait: float = 300) -> tuple[Record, bool]:
    """This project's detached local server with the UI, SQLite in .kedro-prefect/prefect-home.

    Returns (record, started): a running one is reused. The port: `port`, else the one it had
    last time, else 4200, whichever is free first. It waits for the
    API as long as the server lives, up to `wait`: on a loaded 2-core machine a start passed 120 s.
    """
    path = local_record_path(project_path)
    with file_lock(path.with_suffix(".lock")):
        record = read_record(path)
        if is_running(record):
            return record, False
        if problems := server_install_problems():
            raise RuntimeError("; ".join(problems))
        port = port or _port_for(project_path)
        home = state_dir(project_path) / "prefect-home"
        home.mkdir(parents=True, exist_ok=True)
        log = state_dir(project_path) / "server.log"
        process = start_detached(_server_command(port), log, project_path, _server_env(home, port, ui=True))
        record = Record(
            pid=process.pid, marker=f"--port {port} ", log=str(log), url=f"http://127.0.0.1:{port}/api"
        )
        write_record(path, record)
        write_private(_last_port_path(project_path), f"{port}\n")
    try:
        _wait_healthy(record.url, lambda: process.poll() is None, log, wait)
    except RuntimeError:
        stop(record, timeout=5)
        path.unlink(missing_ok=True)
        raise
    return record, True


def stop_local_server(project_path: Path, timeout: float = 20) -> str:
    path = local_record_path(project_path)
    record = read_record(path)
    outcome = stop(record, timeout) if record else "not running"
    path.unlink(missing_ok=True)
    return outcome


def _last_port_path(project_path: Path) -> Path:
    return state_dir(project_path) / "server-port"


def _port_for(project_path: Path) -> int:
    """The port this project's server had last time, if free (the UI's address and a pasted
    PREFECT_API_URL keep working after a stop and start), else 4200 if free, else any free one."""
    try:
        last = int(_last_port_path(project_path).read_text())
    except (OSError, ValueError):
        last = None
    candidates = [port for port in (last, 4200) if port and 0 < port < 65536]
    return next((port for port in candidates if _port_free(port)), None) or free_port()


def _port_free(port: int) -> bool:
    """No one listens on `port`. SO_REUSEADDR, as the server sets it: the connections a stopped
    server leaves in TIME_WAIT for a minute do not keep its port from being used again."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stop_server(process: subprocess.Popen, timeout: float = 20) -> None:
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
