"""Background processes the plugin starts (worker, local server): records, locks, start, stop.

A record is a small JSON file under `<project>/.kedro-prefect/`. It is trusted only
while its process is alive *and* still is the process we started (its command line
carries a marker), so a record left by a reboot or a reused pid is replaced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeGuard

STATE_DIR = ".kedro-prefect"


@dataclass(frozen=True)
class Record:
    pid: int
    marker: str  # a string in the process's command line
    log: str
    url: str = ""


def state_dir(project_path: Path) -> Path:
    return Path(project_path) / STATE_DIR


def read_record(path: Path) -> Record | None:
    try:
        return Record(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_record(path: Path, record: Record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(record)))
    temporary.replace(path)


def is_running(record: Record | None) -> TypeGuard[Record]:
    """Alive, and still our process: not a zombie, and its command line has the marker."""
    if record is None:
        return False
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process now holds that pid
    proc = Path(f"/proc/{record.pid}")
    if not proc.exists():  # no procfs (macOS): the signal check is all we have
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return state != "Z" and record.marker in cmdline


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (concurrent Kedro sessions), released on exit."""
    import fcntl  # POSIX only; imported here so the hook still loads elsewhere

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_detached(command: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> int:
    """Start `command` in its own session, so it outlives the Kedro command and its Ctrl-C."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid


def stop(record: Record, timeout: float = 15) -> str:
    """SIGTERM to the process group, then SIGKILL after `timeout`; says what it did."""
    if not is_running(record):
        return "not running"
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(record):
            return "stopped"
        time.sleep(0.2)
    _signal_group(record.pid, signal.SIGKILL)
    time.sleep(0.2)
    return "killed"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # started with start_new_session: pid is the group id
    except (ProcessLookupError, PermissionError):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
