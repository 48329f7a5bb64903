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
from collections.abc import Callable, Iterator
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


def ensure_private(folder: Path) -> Path:
    """`folder`, created if needed, readable by its owner only: it holds the local
    server's database, logs that may quote settings, and process records."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)  # made by an earlier version, or by a loose umask
    return folder


def write_private(path: Path, text: str) -> None:
    """Write `path` atomically, owner-only, in an owner-only folder."""
    ensure_private(path.parent)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    temporary.replace(path)


def read_record(path: Path) -> Record | None:
    try:
        return Record(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_record(path: Path, record: Record) -> None:
    write_private(path, json.dumps(asdict(record)))


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

    ensure_private(path.parent)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_detached(command: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> int:
    """Start `command` in its own session, so it outlives the Kedro command and its Ctrl-C."""
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
    return process.pid


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
    try:
        os.killpg(pid, sig)  # started with start_new_session: pid is the group id
    except (ProcessLookupError, PermissionError):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
