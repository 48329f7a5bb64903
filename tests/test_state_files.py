"""Files under .kedro-prefect/ that are not what the plugin wrote (hand edits, a full disk, another
version) are discarded with one warning and rebuilt: they never crash or wedge a Kedro command,
and a recorded pid is signalled only while it is the process the plugin started."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from kedro_prefect_hooks.local.processes import STATE_DIR
from kedro_prefect_hooks.local.server import _port_for
from kedro_prefect_hooks.registration.prefect_import import facts_path

from conftest import invoke, open_session, project_deployments
from kedro_projects import BIN


def state_file(project, name):
    folder = project / STATE_DIR
    folder.mkdir(exist_ok=True)
    return folder / name


def warnings_about(hook_log, name):
    return [m for m in hook_log.messages() if name in m]


@pytest.mark.parametrize(
    "content", ["[]", "null", '{"key": 1, "schema": 2, "process_template": 3}', '{"key": "k"}', "{not json"]
)
def test_a_bad_prefect_facts_cache_is_rebuilt(api_url, make_project, hook_log, content):
    """Seen: `echo '[]' > .kedro-prefect/flow-schema.json` (where the flow's schema was kept before),
    then any change: `kedro run` rc 1, 68-line traceback."""
    project = make_project("pipelines: [data_science]\n")
    facts_path().parent.mkdir(parents=True, exist_ok=True)
    facts_path().write_text(content)
    open_session(project)
    [warning] = warnings_about(hook_log, "prefect-facts.json")
    assert "kedro-prefect-hooks/prefect-facts.json was not what this plugin writes" in warning
    assert "removed" in warning
    [deployment] = project_deployments(api_url, project)
    assert "pipeline" in deployment["parameter_openapi_schema"]["properties"]
    assert json.loads(facts_path().read_text())["schema"]


@pytest.mark.parametrize("content", ["null", "[]", '{"fingerprint": "x", "names": "a"}', '{"names": [1]}'])
def test_a_bad_pipeline_cache_is_rebuilt(api_url, make_project, hook_log, content):
    """Seen: `echo null > .kedro-prefect/pipelines.json`: "nothing registered" forever, `register` crashed."""
    project = make_project("pipelines: all\n")
    state_file(project, "pipelines.json").write_text(content)
    open_session(project)
    assert len(warnings_about(hook_log, "pipelines.json")) == 1
    assert not [m for m in hook_log.messages() if "nothing registered" in m]
    assert len(project_deployments(api_url, project)) == 3
    state_file(project, "pipelines.json").write_text(content)
    result = invoke(project, "register")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("entry", ['"refused"', "[1, 2]", '{"fingerprint": 5}'])
def test_a_bad_refusal_record_is_rebuilt(api_url, make_project, hook_log, entry):
    """Seen: a refused.json entry that is a string made every `kedro run` fail."""
    project = make_project("pipelines: [data_science]\n")
    state_file(project, "refused.json").write_text(f'{{"{api_url}": {entry}}}')
    open_session(project)
    assert len(warnings_about(hook_log, "refused.json")) == 1
    assert len(project_deployments(api_url, project)) == 1


@pytest.mark.parametrize("pid", ['"abc"', "0", "-1", "1", "null", "1.5"])
def test_a_bad_worker_record_never_crashes_or_signals(api_url, make_project, hook_log, pid):
    """Seen: `pid: "abc"` crashed `kedro run`, `worker status` and `worker stop`; `pid: 0` counted as running."""
    project = make_project("pipelines: [data_science]\n")
    record = state_file(project, "worker-kedro.json")
    content = f'{{"pid": {pid}, "marker": "kedro-x-kedro", "log": "w.log", "url": "{api_url}"}}'
    record.write_text(content)
    status = invoke(project, "worker", "status")
    assert status.exit_code == 0 and "not running" in status.output, status.output
    record.write_text(content)
    stopped = invoke(project, "worker", "stop")
    assert stopped.exit_code == 0 and "not running" in stopped.output, stopped.output
    record.write_text(content)
    open_session(project)
    assert len(project_deployments(api_url, project)) == 1


def test_a_live_pid_whose_command_line_does_not_match_is_not_signalled(api_url, make_project):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        project = make_project("pipelines: [data_science]\n")
        state_file(project, "worker-kedro.json").write_text(
            json.dumps({"pid": bystander.pid, "marker": "kedro-x-kedro", "log": "w.log", "url": api_url})
        )
        stopped = invoke(project, "worker", "stop", "--timeout", "1")
        assert "not running" in stopped.output, stopped.output
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize("pid", ["0", "-1", '"abc"'])
def test_server_stop_with_a_bad_server_record_signals_nothing(make_project, pid):
    """Seen: `pid: 0` in server.json: `server stop` sent SIGINT to its own process group ("Aborted!")."""
    project = make_project("pipelines: all\n")
    state_file(project, "server.json").write_text(
        f'{{"pid": {pid}, "marker": "--port 4200 ", "log": "s.log", "url": "http://127.0.0.1:4200/api"}}'
    )
    # its own session: on a build that signals group 0, only this command is hit, not the test runner
    result = subprocess.run(
        [str(BIN / "kedro"), "prefect", "server", "stop"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Aborted" not in result.stdout + result.stderr
    assert "local server: not running" in result.stdout


@pytest.mark.parametrize("content", ["", "abc", "70000", "-1"])
def test_a_bad_last_server_port_is_ignored(tmp_path, content):
    """`server start` reuses the port in .kedro-prefect/server-port: a bad one picks a free port."""
    state_file(tmp_path, "server-port").write_text(content)
    port = _port_for(tmp_path)
    with socket.socket() as sock:  # usable by a server (which sets SO_REUSEADDR too)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_a_taken_last_server_port_is_not_reused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # another server listens there
        last = taken.getsockname()[1]
        state_file(tmp_path, "server-port").write_text(f"{last}\n")
        assert _port_for(tmp_path) != last
    assert _port_for(tmp_path) == last  # free again: reused
