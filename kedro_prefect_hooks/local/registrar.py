"""The background registrar: what a session does when the pipeline cache is stale.

Loading the pipeline registry imports every pipeline module (seconds, with scikit-learn
or plotly), while `kedro run --pipeline a` imports only a's. So a session that finds
the pipelines changed since their last load does not load them itself: it starts
`kedro prefect register` detached, one at a time per project, and the next session and
`kedro prefect list` say how that ended. None is started again while what it loaded is
unchanged (a module that does not import would fail again, importing every pipeline each
session): an edit, or `kedro prefect register`, tries again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.local.processes import Record, file_lock, is_running, start_detached
from kedro_prefect_hooks.local.state import is_text_list, read_state, state_dir, write_private

MARKER = "kedro_prefect_hooks.local.registrar"  # in the registrar's command line
STATES = ("running", "passed", "failed")
SAID = ("warning", "written", "pruned", "clash")  # the lines of `register`'s output the next session repeats


@dataclass(frozen=True)
class RegistrarRun:
    """One background registration, as `.kedro-prefect/registrar.json` records it."""

    state: str  # running | passed | failed
    pid: int
    started: float
    finished: float = 0.0
    exit_code: int = 0
    lines: list[str] = field(default_factory=list)  # warning / written / pruned / clash lines, or the error
    shown: bool = False  # a session has said how it ended
    code: str = ""  # what the registry would read, when it started (project.registry_inputs)

    @property
    def warns(self) -> bool:
        return self.state != "passed" or any(line.startswith("warning") for line in self.lines)

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.finished or self.started))
        if self.state == "running":
            return f"running since {when} (pid {self.pid})"
        what = "; ".join(self.lines) or ("nothing needed writing" if self.state == "passed" else "no output")
        return f"{self.state} at {when}: {what}"


def registrar_log(project_path: Path) -> Path:
    return state_dir(project_path) / "registrar.log"


def _record_path(project_path: Path) -> Path:
    return state_dir(project_path) / "registrar.json"


def _lock_path(project_path: Path) -> Path:
    return state_dir(project_path) / "registrar.lock"


def _problem(data: Any) -> str | None:
    if not isinstance(data, dict) or data.get("state") not in STATES:
        return "no registrar state"
    if not all(
        isinstance(data.get(key), (int, float)) for key in ("pid", "started", "finished", "exit_code")
    ):
        return "pid, times and exit code must be numbers"
    if not is_text_list(data.get("lines")) or not isinstance(data.get("shown"), bool):
        return "no output lines"
    if not isinstance(data.get("code"), str) or set(data) - set(RegistrarRun.__dataclass_fields__):
        return "unknown fields"
    return None


def last_run(project_path: Path) -> RegistrarRun | None:
    """The latest background registration; a running one whose process is gone counts as failed."""
    data = read_state(_record_path(project_path), _problem)
    if data is None:
        return None
    found = RegistrarRun(**data)
    if found.state == "running" and not is_running(Record(found.pid, MARKER, "")):
        return replace(found, state="failed", lines=["it stopped before saying how it ended"])
    return found


def _write(project_path: Path, run: RegistrarRun) -> None:
    write_private(_record_path(project_path), json.dumps(asdict(run)))


def start_registrar(project_path: Path, env: str | None, code: str) -> RegistrarRun | None:
    """`kedro prefect register [--env env]` in the background, for the registry's inputs as `code`
    fingerprints them. None when started; else the run that stands in its way: one running, or
    one that ended on these same inputs (loading them again gives the same)."""
    with file_lock(_lock_path(project_path)):
        current = last_run(project_path)
        if current is not None and (current.state == "running" or current.code == code):
            return current
        log = registrar_log(project_path)
        log.unlink(missing_ok=True)  # it holds the latest registration only
        entry = f"from {MARKER} import main; main()"  # not `-m`: the package imports this module already
        command = [sys.executable, "-c", entry, str(project_path), *(["--env", env] if env else [])]
        process = start_detached(command, log, project_path, dict(os.environ))
        _write(project_path, RegistrarRun("running", process.pid, time.time(), code=code))
    return None


def news(project_path: Path) -> RegistrarRun | None:
    """How the last background registration ended, once: None if running, unknown or said before."""
    if not _record_path(project_path).exists():  # every session asks: no lock when none ever ran
        return None
    with file_lock(_lock_path(project_path)):
        found = last_run(project_path)
        if found is None or found.state == "running" or found.shown:
            return None
        _write(project_path, replace(found, shown=True))
    return found


def _register(project_path: Path, env: str | None, code: str) -> RegistrarRun:
    """Run the synchronous command, log its output, keep what the next session should repeat."""
    command = [sys.executable, "-m", "kedro", "prefect", "register", *(["--env", env] if env else [])]
    started = time.time()
    print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, cwd=project_path, capture_output=True, text=True, check=False)
    print(done.stdout + done.stderr + f"--- exit {done.returncode}", flush=True)
    if done.returncode == 0:
        lines = [" ".join(line.split()) for line in done.stdout.splitlines() if line.startswith(SAID)]
    else:
        errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        said = [line for line in errors if line.startswith("Error:")] or errors  # click's one-line error
        lines = [*said[-1:], f"log: {registrar_log(project_path)}"]
    state = "passed" if done.returncode == 0 else "failed"
    return RegistrarRun(state, os.getpid(), started, time.time(), done.returncode, lines, code=code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=MARKER)
    parser.add_argument("project_path", type=Path)
    parser.add_argument("--env", default=None)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    with file_lock(_lock_path(args.project_path)):
        started = last_run(args.project_path)
    outcome = _register(args.project_path, args.env, started.code if started else "")
    with file_lock(_lock_path(args.project_path)):
        _write(args.project_path, outcome)
