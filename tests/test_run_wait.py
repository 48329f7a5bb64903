"""`kedro prefect run --wait`: node counts from the pipeline, no silent wait without a worker,
the failed node and the command that resumes from it. Real server, real workers, real projects."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from kedro_prefect_hooks.local.server import start_server, stop_server
from kedro_prefect_hooks.local.worker import running_workers, stop_worker

from conftest import TEST_SERVER_SETTINGS, invoke, kedro, start_process_worker, stop_process
from kedro_projects import BIN, add_flow_pipelines, add_pipeline, copy_project
from prefect_runs import call_api

WIDE = 201  # more task runs than one page of the API (200)

WIDE_PIPELINE = f"""
from kedro.pipeline import Pipeline, node


def one(x):
    return x


def create_pipeline(**kwargs):
    return Pipeline([node(one, "params:start", f"wide_{{i}}", name=f"wide_{{i}}") for i in range({WIDE})])
"""


@pytest.fixture(scope="module")
def wait_project(prefect_server, project_template, tmp_path_factory):
    """The flow-test pipelines plus a 201-node one, registered for the `kedro` pool."""
    project = add_flow_pipelines(
        copy_project(project_template, tmp_path_factory.mktemp("wait"), "pipelines: all\n")
    )
    package = next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    (package / "pipelines" / "wide").mkdir()
    (package / "pipelines" / "wide" / "__init__.py").write_text(
        "from .pipeline import create_pipeline  # noqa\n"
    )
    (package / "pipelines" / "wide" / "pipeline.py").write_text(WIDE_PIPELINE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_API_URL", prefect_server)
        registered = invoke(project, "register")
    assert registered.exit_code == 0, registered.output
    return project


def flow_run_of(output: str, api_url: str) -> dict:
    run_id = output.split("/runs/flow-run/")[1].split()[0]
    return call_api("GET", f"{api_url}/flow_runs/{run_id}").json()


def test_the_count_comes_from_the_pipeline_and_the_filters(api_url, wait_project, process_worker):
    ran = invoke(wait_project, "run", "__default__", "--nodes", "double", "--wait", "--timeout", "180")
    assert ran.exit_code == 0, ran.output
    progress = [line for line in ran.output.splitlines() if "nodes completed" in line]
    assert progress[0].endswith(": 0/1 nodes completed"), progress  # not 0/0 before tasks start
    assert progress[-1] == "COMPLETED: 1/1 nodes completed" and progress.count(progress[-1]) == 1
    assert flow_run_of(ran.output, api_url)["parameters"]["node_names"] == ["double"]


def test_filter_options_become_the_flow_parameters_of_the_same_names(api_url, wait_project):
    filters = [
        *("--namespaces", "alpha", "--nodes", "alpha.first,alpha.second"),
        *("--from-nodes", "alpha.first", "--to-nodes", "alpha.second"),
        *("--from-inputs", "seed", "--to-outputs", "alpha.z"),
        *("--load-versions", "doubled:2026-01-01T00.00.00.000Z,result:v2", "--only-missing-outputs"),
    ]
    ran = invoke(wait_project, "run", "namespaced", *filters, "--tags", "t1,t2")
    # tags t1,t2 match no node: Kedro's filter leaves nothing, which is refused before any run
    assert ran.exit_code == 1 and "No run was created" in ran.output and "/runs/flow-run/" not in ran.output
    ran = invoke(wait_project, "run", "namespaced", *filters)
    assert ran.exit_code == 0, ran.output
    parameters = flow_run_of(ran.output, api_url)["parameters"]
    assert {k: v for k, v in parameters.items() if k not in ("pipeline", "env")} == {
        "namespaces": ["alpha"],
        "node_names": ["alpha.first", "alpha.second"],
        "from_nodes": ["alpha.first"],
        "to_nodes": ["alpha.second"],
        "from_inputs": ["seed"],
        "to_outputs": ["alpha.z"],
        "load_versions": {"doubled": "2026-01-01T00.00.00.000Z", "result": "v2"},
        "only_missing_outputs": True,
    }
    unknown = invoke(wait_project, "run", "__default__", "--nodes", "nope")
    assert unknown.exit_code == 1 and "'nope'" in unknown.output and "No run was created" in unknown.output


def test_more_tasks_than_one_page_are_all_counted(api_url, wait_project, process_worker):
    ran = invoke(wait_project, "run", "wide", "--wait", "--timeout", "300")
    assert ran.exit_code == 0, ran.output
    assert f"COMPLETED: {WIDE}/{WIDE} nodes completed" in ran.output.splitlines()  # the run's report
    # The server's count, which the progress line reads while a run goes on, has no page
    # limit either. Waiting for it also lets the server write its backlog of 201 task runs
    # (SQLite answers 503 for seconds meanwhile) before the next test triggers a run.
    body = {
        "flow_runs": {"id": {"any_": [flow_run_of(ran.output, api_url)["id"]]}},
        "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }
    deadline = time.monotonic() + 180
    while (counted := call_api("POST", f"{api_url}/task_runs/count", json=body).json()) < WIDE:
        assert time.monotonic() < deadline, f"the server counts {counted} completed task runs"
        time.sleep(1)
    assert counted == WIDE


def test_a_failure_names_the_node_and_the_command_that_resumes_from_it(api_url, wait_project, process_worker):
    ran = invoke(wait_project, "run", "failing", "--params", "start=4", "--wait", "--timeout", "180")
    assert ran.exit_code == 1, ran.output
    lines = ran.output.splitlines()
    assert "FAILED: 1/3 nodes completed, 1 failed" in lines
    assert "Failed node: boom" in lines
    assert (
        "Resume with: kedro prefect run failing --params start=4 --wait --timeout 180 --from-nodes boom"
        in lines
    )
    assert any(line.startswith("Error: ") and "boom: the input was 4" in line for line in lines)


@pytest.fixture
def own_pool_project(api_url, project_template, tmp_path):
    """A registered project whose pool no worker serves; its worker (if a test starts one) stopped after."""
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    project = copy_project(
        project_template,
        tmp_path,
        f"pipelines: [data_processing]\nwork_pool: {{name: {pool}}}\nworker: {{query_seconds: 1}}\n",
    )
    assert invoke(project, "register").exit_code == 0
    yield project, pool
    for running in running_workers(project):
        stop_worker(project, running, timeout=5)


def test_without_a_worker_it_says_so_and_how_to_start_one(own_pool_project):
    project, pool = own_pool_project
    ran = invoke(project, "run", "data_processing", "--wait", "--timeout", "6")
    assert ran.exit_code == 1
    assert f"No worker is online for work pool '{pool}'" in ran.output
    assert "`kedro prefect worker start`" in ran.output and "worker: {start: true}" in ran.output
    assert "Error: still SCHEDULED" in ran.output
    progress = [line for line in ran.output.splitlines() if "nodes completed" in line and "Error" not in line]
    assert len(progress) == len(set(progress)), progress  # no line twice


def test_it_keeps_waiting_and_a_worker_that_comes_runs_it(own_pool_project):
    """Seen: `--wait` sat at "SCHEDULED: 0/0 tasks completed" with nothing saying why."""
    project, pool = own_pool_project
    waiting = subprocess.Popen(
        [str(BIN / "kedro"), "prefect", "run", "data_processing", "--wait", "--timeout", "180"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "1000"},
    )
    seen = []
    worker = None
    try:
        for line in waiting.stdout:
            seen.append(line.rstrip())
            if f"No worker is online for work pool '{pool}'" in line and worker is None:
                worker = subprocess.Popen(
                    [str(BIN / "kedro"), "prefect", "worker", "start"],
                    cwd=project,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
        waiting.wait(timeout=60)
    finally:
        waiting.kill()
        if worker is not None:
            kedro(project, "prefect", "worker", "stop")
            worker.wait(timeout=60)
    assert worker is not None, seen
    assert waiting.returncode == 0, seen
    assert any(f"A worker is online for work pool '{pool}' now" in line for line in seen), seen
    assert seen[-1] == "COMPLETED: 1/1 nodes completed", seen


def test_ctrl_c_stops_following_and_says_the_run_goes_on(own_pool_project):
    project, pool = own_pool_project
    waiting = subprocess.Popen(
        [str(BIN / "kedro"), "prefect", "run", "data_processing", "--wait"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "1000"},
    )
    try:
        for line in waiting.stdout:
            if f"No worker is online for work pool '{pool}'" in line:
                waiting.send_signal(signal.SIGINT)
                break
        try:
            rest = waiting.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired as exc:  # say how SIGINT was handled there, to find out why
            signals = [
                line
                for line in Path(f"/proc/{waiting.pid}/status").read_text().splitlines()
                if line.startswith("Sig")
            ]
            raise AssertionError(f"still following 60 s after SIGINT: {signals} {exc.output!r}") from None
    finally:
        waiting.kill()
    assert waiting.returncode == 130, rest
    assert "Stopped following the run; it goes on: http://" in rest and "Traceback" not in rest


BRANCHES = """
from pathlib import Path

from kedro.pipeline import Pipeline, node


def source(start):
    return start


def fails_once(x):
    marker = Path("data") / "a-attempted"
    if not marker.exists():
        marker.write_text("1")
        raise RuntimeError("a_fail fails on its first attempt")
    return x + 1


def middle(x):
    return x * 10


def create_pipeline(**kwargs):
    return Pipeline([
        node(source, "params:start", "src", name="n_src"),
        node(fails_once, "src", "a_out", name="a_fail"),
        node(middle, "src", "b_mem", name="b_mid"),  # b_mem: in memory only
        node(middle, "b_mem", "b_out", name="b_end"),
    ])
"""
BRANCHES_CATALOG = """
src: {type: json.JSONDataset, filepath: data/src.json}
a_out: {type: json.JSONDataset, filepath: data/a_out.json}
b_out: {type: json.JSONDataset, filepath: data/b_out.json}
"""


def resume_line(output: str) -> str:
    """The printed command that resumes the run."""
    [line] = [line for line in output.splitlines() if "kedro prefect run" in line and "Error" not in line]
    return line


def from_nodes_of(command: str) -> set[str]:
    words = shlex.split(command)
    return set(words[words.index("--from-nodes") + 1].split(","))


def test_the_printed_resume_command_restarts_every_unfinished_branch(
    api_url, project_template, tmp_path, process_worker
):
    """Issue 18, 2: `--from-nodes a_fail` was printed, while Kedro's own rule restarts a_fail and b_mid
    (b_end's input is in memory): following it completed 1/1 nodes and b_out was never written."""
    project = copy_project(project_template, tmp_path, "pipelines: [branches]\n")
    add_pipeline(project, "branches", BRANCHES, catalog=BRANCHES_CATALOG)
    assert invoke(project, "register").exit_code == 0
    failed = invoke(project, "run", "branches", "--wait", "--timeout", "180")
    assert failed.exit_code == 1, failed.output
    command = resume_line(failed.output)
    assert from_nodes_of(command) == {"a_fail", "b_mid"}, failed.output
    message = flow_run_of(failed.output, api_url)["state"]["message"]
    assert "--from-nodes a_fail,b_mid" in message, message  # the run's own hint: the same set

    words = shlex.split(command[command.index("kedro prefect run") :])
    resumed = invoke(project, *words[2:])
    assert resumed.exit_code == 0, resumed.output
    assert "COMPLETED: 3/3 nodes completed" in resumed.output.splitlines(), resumed.output
    assert json.loads((project / "data" / "b_out.json").read_text()) == 300
    assert json.loads((project / "data" / "a_out.json").read_text()) == 4


# The task-run recorder writes task runs to the server's database from the events the flow
# sends; on a busy server it lagged minutes behind the flow run's own state. Without it,
# a real server never counts a task run: the far end of that lag.
NO_TASK_RUN_RECORDER = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
    "PREFECT_API_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
}


FIVE_NODES = """
from kedro.pipeline import Pipeline, node


def one(x):
    return x


def create_pipeline(**kwargs):
    return Pipeline([node(one, "params:start", f"five_{i}", name=f"five_{i}") for i in range(5)])
"""


@pytest.fixture(scope="module")
def lagging_server(tmp_path_factory, isolated_prefect_home):
    """A real server whose task-run count stays 0, and a process worker for its `kedro` pool."""
    home = tmp_path_factory.mktemp("lagging-server")
    process, url = start_server(home, settings={**TEST_SERVER_SETTINGS, **NO_TASK_RUN_RECORDER})
    worker = start_process_worker(url, "kedro", home / "worker.log")
    yield url
    stop_process(worker)
    stop_server(process)


def test_a_completed_run_is_reported_with_the_count_the_run_knows(
    lagging_server, project_template, tmp_path, monkeypatch
):
    """Issue 18, 6: `COMPLETED: 211/1000 nodes completed` (exit 0) while the server was still
    recording task runs; the run's own report knows every node completed."""
    monkeypatch.setenv("PREFECT_API_URL", lagging_server)
    project = copy_project(project_template, tmp_path, "pipelines: [five]\n")
    add_pipeline(project, "five", FIVE_NODES)
    assert invoke(project, "register").exit_code == 0
    ran = invoke(project, "run", "five", "--wait", "--timeout", "180")
    assert ran.exit_code == 0, ran.output
    assert ran.output.splitlines()[-1] == "COMPLETED: 5/5 nodes completed", ran.output
    assert call_api("POST", f"{lagging_server}/task_runs/count", json={}).json() == 0  # the server knows none
