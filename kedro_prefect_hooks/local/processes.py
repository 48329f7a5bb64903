"""Background processes the plugin starts (worker, local server): records, locks, start, stop.

A record is a small JSON file under `<project>/.kedro-prefect/`. It is trusted only
while its process is alive *and* still is the process we started (its command line
carries a marker), so a record left by a reboot or a reused pid is replaced, and a
pid that is not ours (0, 1, a stranger's) is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeGuard

from kedro_prefect_hooks.local.state import STATE_DIR, ensure_private, read_state, state_dir, write_private

__all__ = ["STATE_DIR", "Record", "ensure_private", "state_dir", "write_private"]


@dataclass(frozen=True)
class Record:
    pid: int
    marker: str  # a string in the process's command line
    log: str
    url: str = ""
    name: str = ""  # what the process serves, e.g. the work pool: file names may be shortened


def _record_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or set(data) - {"pid", "marker", "log", "url", "name"}:
        return "not a process record"
    pid = data.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return f"pid {pid!r} is not a process this plugin started"
    if not isinstance(data.get("marker"), str) or not data["marker"].strip():
        return "no command-line marker"
    if not all(isinstance(data.get(key, ""), str) for key in ("log", "url", "name")):
        return "log, url and name must be text"
    return None


def read_record(path: Path) -> Record | None:
    data = read_state(path, _record_problem)
    return Record(**data) if data is not None else None


def write_record(path: Path, record: Record) -> None:
    write_private(path, json.dumps(asdict(record)))


def is_running(record: Record | None) -> TypeGuard[Record]:
    """Alive, and still our process: not a zombie, and its command line has the marker."""
    if record is None or record.pid <= 1:  # 0 and negative pids name process groups, 1 is init
        return False
    try:
        os.kill(record.pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or someone else's process now holds that pid
        return False
    command = command_line(record.pid)
    return command is not None and record.marker in command


def command_line(pid: int) -> str | None:
    """The live (not zombie) process's command line, its arguments joined by spaces; None if unknown."""
    if Path("/proc/self").exists():
        proc = Path(f"/proc/{pid}")
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            return None
        return None if state == "Z" else command
    try:  # no procfs (macOS): ask ps
        found = subprocess.run(
            ["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    state, _, command = found.partition(" ")
    return None if not found or state.startswith("Z") else command


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (concurrent Kedro sessions), released on exit."""
    import fcntl  # POSIX only; imported here so the hook still loads elsewhere

    ensure_private(path.parent)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_detached(command: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `command` in its own session, so it outlives the Kedro command and its Ctrl-C.

    While the caller waits for it to come up, `poll()` of the returned process tells
    whether it lives: right after the start, /proc/<pid>/cmdline can still be empty on a
    busy machine (the kernel sets it up after Popen has returned), so the marker check
    of `is_running` would call a live process dead.
    """
    ensure_private(log_path.parent)
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=sigint_reset(),
        )
    return process


def sigint_reset() -> Callable[[], None] | None:
    """For Popen's preexec_fn: give the child the default SIGINT if this process ignores it.

    A command started by a script's `cmd &` or by nohup ignores SIGINT, and its
    children inherit that. Prefect's worker stops on SIGINT (and turns SIGTERM into a
    SIGINT to itself) by restoring the handler it found: an ignored SIGINT then never
    stops it, and `stop` ends with SIGKILL. None (no preexec_fn) in the usual case.
    """
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        return None

    def reset() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return reset


def stop(record: Record, timeout: float = 15) -> str:
    """Ctrl-C (SIGINT), then SIGTERM halfway through `timeout`, then SIGKILL; says what it did.

    Prefect's worker and server shut down cleanly and at once on SIGINT; a worker given
    SIGTERM sends itself a SIGINT, one hop more to go wrong. A process we started in its
    own session gets the signals as a group (its children too), a foreground worker's
    `prefect worker` child (no group of its own) alone.
    """
    if not is_running(record):
        return "not running"
    start = time.monotonic()
    for sig, until in ((signal.SIGINT, start + timeout / 2), (signal.SIGTERM, start + timeout)):
        _signal_group(record.pid, sig)
        while time.monotonic() < until:
            if not is_running(record):
                return "stopped"
            time.sleep(0.1)
    _signal_group(record.pid, signal.SIGKILL)
    time.sleep(0.2)
    return "killed"


def _signal_group(pid: int, sig: int) -> None:
    if pid <= 1:  # never a group, never init (is_running already refused such a record)
        return
    try:
        os.killpg(pid, sig)  # started with start_new_session: pid is the group id
    except (ProcessLookupError, PermissionError):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
