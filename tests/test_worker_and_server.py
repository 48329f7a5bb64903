"""The opt-in worker and the project's local server: real processes, a real server, real projects."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from kedro_prefect_hooks.local.processes import Record, read_record, write_record
from kedro_prefect_hooks.local.server import free_port, local_server_url, stop_local_server
from kedro_prefect_hooks.local.worker import record_path, running_workers, stop_worker, worker_name
from kedro_prefect_hooks.registration.automations import CRASH_AUTOMATION

from conftest import AUTH_STRING, kedro, open_session, project_deployments
from prefect_runs import call_api, trigger, wait_for_run


def package_name(project: Path) -> str:
    return next(p.name for p in (project / "src").iterdir() if p.name.startswith("proj_"))


@pytest.fixture
def worker_project(make_project):
    """A project whose prefect.yml turns the worker on, for a pool of its own; its processes stopped after."""
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    project = make_project(
        f"pipelines: all\nwork_pool: {{name: {pool}}}\nworker: {{start: true, query_seconds: 1}}\n"
        "timeout: 30\n"  # its sessions must register, however slowly a just-started server answers
    )
    yield project, pool
    for running_pool in running_workers(project):
        stop_worker(project, running_pool, timeout=5)
    stop_local_server(project, timeout=5)


def processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ) and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def online_workers(api_url: str, pool: str, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = call_api("POST", f"{api_url}/work_pools/{pool}/workers/filter", json={}, check=False)
        workers = response.json() if response.status_code == 200 else []  # 404: no pool yet
        online = [w for w in workers if w["status"] == "ONLINE"]
        if online:
            return online
        time.sleep(0.5)
    return []


def test_without_the_flag_no_worker_starts(api_url, make_project):
    project = make_project("pipelines: all\n")
    open_session(project)
    assert running_workers(project) == {}
    assert not record_path(project, "kedro").exists()


def test_the_flag_starts_one_worker_across_sessions_and_it_runs_deployments(api_url, worker_project):
    project, pool = worker_project
    package = next(p.name for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    runs = [
        subprocess.Popen(
            [str(Path(os.sys.executable).parent / "kedro"), "run", "--pipeline", "data_processing"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "1000"},
        )  # rich would wrap the lines
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    open_session(project)  # and one more, afterwards
    assert len(processes_with(f"--name {worker_name(package, pool)}")) == 1
    assert [w["name"] for w in online_workers(api_url, pool)] == [worker_name(package, pool)]
    assert sum("started a process worker" in out for out in outputs) == 1, outputs  # with its log path
    record = read_record(record_path(project, pool))
    assert f"log: {record.log}" in next(out for out in outputs if "started a process worker" in out)

    deployment = next(d for d in project_deployments(api_url, project) if d["name"] == "data_processing")
    assert (
        wait_for_run(api_url, trigger(api_url, deployment["id"]), timeout=120)["state"]["type"] == "COMPLETED"
    )

    result = kedro(project, "prefect", "worker", "stop")
    assert result.returncode == 0 and f"worker for pool '{pool}': stopped" in result.stdout
    assert processes_with(f"--name {worker_name(package, pool)}") == []
    assert not record_path(project, pool).exists()
    # Seen: the server listed the stopped worker ONLINE for ~90 s (until 3 heartbeats were
    # missed), so `kedro prefect run --wait` did not say that no worker was online.
    listed = call_api("POST", f"{api_url}/work_pools/{pool}/workers/filter", json={}).json()
    assert listed == [], listed
    waited = kedro(project, "prefect", "run", "data_processing", "--wait", "--timeout", "6")
    assert waited.returncode == 1 and f"No worker is online for work pool '{pool}'" in waited.stdout, waited


def test_a_stale_record_is_replaced(api_url, worker_project):
    project, pool = worker_project
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_record(record_path(project, pool), Record(pid=dead.pid, marker="kedro-x", log="old.log"))
    open_session(project)
    replaced = read_record(record_path(project, pool))
    assert replaced.pid != dead.pid and running_workers(project)[pool] == replaced

    stop_worker(project, pool, timeout=5)  # a live pid that is not our worker (pid reuse) is stale too
    write_record(record_path(project, pool), Record(pid=os.getpid(), marker="kedro-x", log="old.log"))
    open_session(project)
    assert read_record(record_path(project, pool)).pid != os.getpid()


def test_inside_a_flow_run_no_worker_starts(api_url, worker_project, monkeypatch):
    project, _pool = worker_project
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "00000000-0000-0000-0000-000000000000")
    open_session(project)
    assert running_workers(project) == {}


def prefect_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    """The `prefect` CLI run in the project folder with no PREFECT_API_URL set, as a user would."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run(
        [str(Path(os.sys.executable).parent / "prefect"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "COLUMNS": "300"},
    )


def test_local_server_start_status_use_and_stop(worker_project, monkeypatch, hook_log):
    project, pool = worker_project
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    started = kedro(project, "prefect", "server", "start", "--port", str(port), timeout=360)
    assert started.returncode == 0, started.stderr
    assert f"UI http://127.0.0.1:{port}" in started.stdout
    assert "Wrote prefect.toml" in started.stdout
    assert local_server_url(project) == url
    assert "running, healthy" in kedro(project, "prefect", "server", "status").stdout

    monkeypatch.chdir(project)  # a Kedro command run in the project reads ./prefect.toml, as Prefect does
    open_session(project)  # the hook uses the local server, and starts the worker
    local = local_server_url(project)
    names = [d["name"] for d in project_deployments(local, project)]
    assert names
    assert pool in running_workers(project)
    # mark_crashed_runs: auto creates the crash automation on the project's own server only
    automations = call_api("POST", f"{local}/automations/filter", json={}).json()
    assert [a["name"] for a in automations] == [CRASH_AUTOMATION]

    # the prefect CLI in the project folder talks to that server with no manual step
    flow_name = project_deployments(local, project)[0]["flow_name"]
    listed = prefect_cli(project, "deployment", "ls")
    assert listed.returncode == 0, listed.stderr
    assert f"{flow_name}/{names[0]}" in listed.stdout, listed.stdout
    sources = prefect_cli(project, "config", "view", "--show-sources").stdout
    assert f"PREFECT_API_URL='{url}' (from prefect.toml)" in sources, sources

    # a prefect.toml of the user's is never touched: they get the line to paste instead
    users = '[logging]\nlevel = "DEBUG"\n'
    (project / "prefect.toml").write_text(users)
    again = kedro(project, "prefect", "server", "start")
    assert again.returncode == 0 and "Already running" in again.stdout, again.stderr
    assert f"export PREFECT_API_URL={url}" in again.stdout
    assert (project / "prefect.toml").read_text() == users
    (project / "prefect.toml").unlink()
    assert "Wrote prefect.toml" in kedro(project, "prefect", "server", "start").stdout

    stopped = kedro(project, "prefect", "server", "stop")
    lines = stopped.stdout.splitlines()
    assert lines.index(f"worker for pool '{pool}': stopped") < lines.index("local server: stopped")
    assert "prefect.toml: removed" in lines and not (project / "prefect.toml").exists()
    assert local_server_url(project) is None and running_workers(project) == {}
    assert "not running" in kedro(project, "prefect", "server", "status").stdout

    # started again with no --port, it comes back where it was: the UI's address still works
    restarted = kedro(project, "prefect", "server", "start", timeout=360)
    assert restarted.returncode == 0, restarted.stderr
    assert local_server_url(project) == url, restarted.stdout
    assert "local server: stopped" in kedro(project, "prefect", "server", "stop").stdout


def test_server_stop_leaves_a_prefect_toml_it_did_not_write(make_project):
    project = make_project()
    users = '[api]\nurl = "http://127.0.0.1:4200/api"\n'
    (project / "prefect.toml").write_text(users)
    stopped = kedro(project, "prefect", "server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "prefect.toml: left as it is" in stopped.stdout
    assert (project / "prefect.toml").read_text() == users


def start_foreground_worker(project: Path) -> subprocess.Popen:
    """`kedro prefect worker start` as a script's `cmd &` (or nohup) starts it: ignoring SIGINT."""
    return subprocess.Popen(
        [str(Path(os.sys.executable).parent / "kedro"), "prefect", "worker", "start"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def test_worker_stop_stops_a_foreground_worker_gracefully(api_url, worker_project):
    """Seen: 16 s and a SIGKILL, then "exited with code -9". Prefect's worker turns SIGTERM into
    a SIGINT to itself, which a worker that inherited an ignored SIGINT never acts on."""
    project, pool = worker_project
    package = next(p.name for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    foreground = start_foreground_worker(project)
    try:
        assert [w["name"] for w in online_workers(api_url, pool, timeout=60)] == [worker_name(package, pool)]
        stopped = kedro(project, "prefect", "worker", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"worker for pool '{pool}': stopped" in stopped.stdout  # not "killed" after --timeout
        output, _ = foreground.communicate(timeout=60)
    finally:
        foreground.kill()
    assert foreground.returncode == 0 and "Error" not in output, output
    assert processes_with(f"--name {worker_name(package, pool)}") == []
    assert not record_path(project, pool).exists()


def test_worker_status_says_what_it_knows_when_the_api_cannot_be_asked(worker_project, monkeypatch):
    project, pool = worker_project
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # no API at all: none set, no local server
    unset = kedro(project, "prefect", "worker", "status")
    assert unset.returncode == 0, unset.stderr
    assert f"this project's worker for pool '{pool}': not running" in unset.stdout
    assert "could not ask the Prefect API" in unset.stdout and "No Prefect API" in unset.stdout
    down = kedro(
        project, "prefect", "worker", "status", env={"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    )
    assert down.returncode == 0, down.stderr
    assert f"this project's worker for pool '{pool}': not running" in down.stdout
    assert "could not ask the Prefect API" in down.stdout and "cannot connect" in down.stdout


def with_credentials(api_url: str) -> str:
    return api_url.replace("http://", f"http://{AUTH_STRING}@")


def broken_prefect(root: Path) -> str:
    """A PYTHONPATH on which `import prefect` fails, as with a broken or incompatible install."""
    (root / "broken" / "prefect").mkdir(parents=True)
    (root / "broken" / "prefect" / "__init__.py").write_text(
        "raise ImportError('simulated broken prefect')\n"
    )
    return str(root / "broken")


def test_the_worker_authenticates_as_the_session_did(auth_server, make_project, monkeypatch):
    """Seen: credentials in api_url did not reach the worker; it died with 401, runs stayed SCHEDULED."""
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    authed = with_credentials(auth_server)
    project = make_project(
        f"pipelines: [data_processing]\napi_url: {authed}\nwork_pool: {{name: {pool}}}\n"
        "worker: {start: true, query_seconds: 1}\ntimeout: 30\n"  # it must register, however loaded
    )
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_not_for_this_server")  # the auth string wins, as in Prefect
    try:
        open_session(project)
        [deployment] = project_deployments(authed, project)
        assert [w["name"] for w in online_workers(authed, pool)]
        run = wait_for_run(authed, trigger(authed, deployment["id"]), timeout=120)
        assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    finally:
        stop_worker(project, pool, timeout=5)


def test_a_worker_that_dies_at_start_is_reported_not_announced(api_url, make_project, tmp_path):
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    project = make_project(f"pipelines: all\nwork_pool: {{name: {pool}}}\n")
    open_session(project)  # registered: the next session takes the fast path, without prefect
    with open(project / "conf" / "base" / "prefect.yml", "a") as conf:
        conf.write("worker: {start: true}\n")
    env = {"PYTHONPATH": broken_prefect(tmp_path), "COLUMNS": "1000"}
    result = kedro(project, "run", env=env)
    assert result.returncode == 0, result.stderr
    assert f"the worker for pool '{pool}' exited while starting" in result.stdout
    assert "simulated broken prefect" in result.stdout and "started a process worker" not in result.stdout

    foreground = kedro(project, "prefect", "worker", "start", env=env)
    assert foreground.returncode == 1 and "exited with code 1" in foreground.stderr


def test_a_worker_for_another_api_is_replaced(api_url, auth_server, worker_project):
    """Seen: a worker kept polling the old server after the project switched; runs stayed SCHEDULED."""
    project, pool = worker_project
    open_session(project)
    first = read_record(record_path(project, pool))
    assert first.url == api_url
    with open(project / "conf" / "base" / "prefect.yml", "a") as conf:
        conf.write(f"api_url: {with_credentials(auth_server)}\n")
    result = kedro(project, "run", env={"COLUMNS": "1000"})
    log = Path(first.log).read_text(errors="replace")
    assert f"stopped the worker for {api_url}" in result.stdout, f"{result.stdout}\nworker log:\n{log}"
    second = read_record(record_path(project, pool))
    assert second.url == auth_server and second.pid != first.pid
    assert [w["name"] for w in online_workers(with_credentials(auth_server), pool)]


def test_the_state_folder_is_private_and_names_on_disk_are_encoded(api_url, worker_project):
    project, pool = worker_project
    open_session(project)
    folder = project / ".kedro-prefect"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(record_path(project, pool).stat().st_mode) == 0o600
    escaped = record_path(project, "../../outside")
    assert escaped.parent == folder and escaped.name == "worker-..%2F..%2Foutside.json"


def test_a_work_pool_name_of_250_characters_starts_its_worker(api_url, make_project):
    """Seen: every `kedro run` failed with OSError 36 (file name too long) for the worker's record."""
    pool = "p" * 244 + uuid.uuid4().hex[:6]
    project = make_project(
        f"pipelines: [data_science]\nwork_pool: {{name: {pool}}}\nworker: {{start: true}}\n"
    )
    try:
        result = kedro(project, "run", env={"COLUMNS": "1000"})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "started a process worker" in result.stdout, result.stdout
        assert pool in running_workers(project)
        assert all(len(p.name.encode()) <= 255 for p in (project / ".kedro-prefect").iterdir())
        assert [w["name"] for w in online_workers(api_url, pool)]
        status = kedro(project, "prefect", "worker", "status")
        assert "running, pid" in status.stdout, status.stdout
    finally:
        stop_worker(project, pool, timeout=5)


LATE_COMMAND_LINE = """#!/bin/sh
# Shows the worker's command line only after a second, as the kernel does for an instant
# on a loaded machine: Popen has returned, /proc/<pid>/cmdline is still empty.
sleep 1
exec $KPH_WORKER_COMMAND
"""


def test_a_worker_whose_command_line_shows_late_is_not_reported_dead(
    api_url, worker_project, tmp_path, monkeypatch, hook_log
):
    """Seen: 2 of 8 flag-started workers reported "exited while starting" while alive and serving:
    the check read /proc/<pid>/cmdline right after the start, before the marker was there."""
    from kedro_prefect_hooks.local import worker

    project, pool = worker_project
    launcher = tmp_path / "launch"
    launcher.write_text(LATE_COMMAND_LINE)
    launcher.chmod(0o755)
    real_command = worker.worker_command

    def late(package, pool_name, options):
        monkeypatch.setenv("KPH_WORKER_COMMAND", " ".join(real_command(package, pool_name, options)))
        return [str(launcher)]

    monkeypatch.setattr(worker, "worker_command", late)
    open_session(project)
    assert not [m for m in hook_log.messages() if "exited while starting" in m], hook_log.messages()
    assert pool in running_workers(project)
    assert [w["name"] for w in online_workers(api_url, pool)] == [worker_name(package_name(project), pool)]
