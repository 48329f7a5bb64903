"""End to end: the hook registers, a real process worker runs the deployments, we read the API.

Runs are triggered in two waves (the second one rewrites the first one's outputs),
each wave at once, so the worker runs them side by side.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import open_session, project_deployments
from kedro_projects import add_flow_pipelines, copy_project
from prefect_runs import run_artifacts, settled_logs, task_runs, timestamp, trigger, wait_for_run

# timeout: one session writes all 12 deployments even when the machine is loaded (a session
# stops registering once answers are `timeout` seconds slower than a healthy server's).
PREFECT_YML = """
pipelines: all
timeout: 30
defaults:
  run:
    node_tags:
      flaky: {retries: 2, retry_delay_seconds: 0}
deployments:
  namespaced:
    run: {group_by: namespace}
  sleepy:
    run: {task_runner: threads}
"""


@pytest.fixture(scope="module")
def flow_project(prefect_server, project_template, tmp_path_factory):
    project = copy_project(project_template, tmp_path_factory.mktemp("flows"), PREFECT_YML)
    add_flow_pipelines(project)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_API_URL", prefect_server)
        open_session(project)  # the hook registers every pipeline
    return project


@pytest.fixture(scope="module")
def deployment_ids(prefect_server, flow_project):
    found = project_deployments(prefect_server, flow_project)
    return {d["parameters"]["pipeline"]: d["id"] for d in found}


@pytest.fixture(scope="module")
def first_wave(prefect_server, process_worker, deployment_ids):
    ids = {
        name: trigger(prefect_server, deployment_ids[pipeline], parameters)
        for name, pipeline, parameters in [
            ("default", "__default__", None),
            ("failing", "failing", None),
            ("flaky", "flaky", None),
            ("sleepy", "sleepy", {"params": {"nap": 2}}),  # long enough to overlap on a busy machine
            ("namespaced", "namespaced", None),
            ("warning", "warning", None),
            ("unknown", "__default__", {"pipeline": "no_such_pipeline"}),
        ]
    }
    return {name: wait_for_run(prefect_server, run_id) for name, run_id in ids.items()}


@pytest.fixture(scope="module")
def second_wave(prefect_server, first_wave, deployment_ids):
    run_id = trigger(prefect_server, deployment_ids["__default__"], {"params": {"start": 10}})
    return wait_for_run(prefect_server, run_id)


def state(run: dict) -> str:
    return run["state"]["type"]


def completed(run: dict) -> bool:
    assert state(run) == "COMPLETED", f"{run['name']}: {run['state']['message']}"
    return True


def hook_calls(project: Path, flow_run: dict) -> list[dict]:
    lines = (project / "data" / f"hooks-{flow_run['id']}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_each_node_is_a_task_run_in_dependency_order(prefect_server, flow_project, first_wave):
    run = first_wave["default"]
    assert completed(run)
    tasks = task_runs(prefect_server, run["id"])
    assert set(tasks) == {"double", "add_one"}
    assert all(state(t) == "COMPLETED" for t in tasks.values())
    double, add_one = tasks["double"], tasks["add_one"]
    assert add_one["task_inputs"]["wait_for"] == [{"input_type": "task_run", "id": double["id"]}]
    assert timestamp(add_one["start_time"]) >= timestamp(double["end_time"])
    assert json.loads((flow_project / "data" / "08_reporting" / "result.json").read_text()) == 7


def test_kedro_logs_reach_the_flow_run(prefect_server, first_wave):
    messages = settled_logs(prefect_server, first_wave["default"]["id"], "doubling 3")
    assert any("Running node: double" in m for m in messages), messages  # the kedro logger
    assert "doubling 3" in messages  # the node's own module logger


def kedro_warning_for_outputs_none() -> str | None:
    """What this Kedro version warns when a node with outputs=None returns a value, if anything."""
    import warnings

    from kedro.pipeline import node

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        node(lambda x: {"ignored": x}, "x", None, name="no_outputs").run({"x": 1})
    return str(caught[0].message) if caught else None


def test_python_and_kedro_warnings_reach_the_flow_run(prefect_server, first_wave):
    """Seen: Kedro's warnings went only to the worker's own log file."""
    run = first_wave["warning"]
    assert completed(run)
    messages = settled_logs(prefect_server, run["id"], "kph-test: this node warns about 3", exact=False)
    assert any("UserWarning: kph-test: this node warns about 3" in m for m in messages), messages
    kedro_warning = kedro_warning_for_outputs_none()
    if kedro_warning is not None:  # Kedro 1.7 has it
        assert any(kedro_warning in m for m in messages), messages


def test_a_markdown_report_is_published(prefect_server, flow_project, first_wave):
    (artifact,) = run_artifacts(prefect_server, first_wave["default"]["id"])
    assert artifact["key"] == "kedro-default"
    assert artifact["type"] == "markdown"
    report = artifact["data"]
    assert "# Kedro pipeline \\_\\_default\\_\\_" in report  # not a bold "default"
    assert "- env: local (the project's default run env)" in report  # the run read conf/local
    assert "| double | completed |" in report
    assert "| result | JSONDataset | " in report and "data/08\\_reporting/result.json" in report
    # the versioned dataset at the version this run wrote, which is on disk
    save_version = re.search(r"- save version: (\S+)", report).group(1)
    assert f"data/02\\_intermediate/doubled.json/{save_version}/doubled.json |" in report
    assert (
        flow_project / "data" / "02_intermediate" / "doubled.json" / save_version / "doubled.json"
    ).exists()


def test_every_kedro_hook_fires(flow_project, first_wave):
    calls = hook_calls(flow_project, first_wave["default"])
    hooks = [c["hook"] for c in calls]
    assert hooks[0] == "before_pipeline_run" and hooks[-1] == "after_pipeline_run"
    assert [c["node"] for c in calls if c["hook"] == "before_node_run"] == ["double", "add_one"]
    assert [c["node"] for c in calls if c["hook"] == "after_node_run"] == ["double", "add_one"]
    assert {c["dataset"] for c in calls if c["hook"] == "after_dataset_saved"} == {"doubled", "result"}
    run_ids = {c["run_id"] for c in calls if "run_id" in c}
    assert len(run_ids) == 1  # pipeline and node hooks see the same Kedro run id


def test_a_failing_node_fails_its_task_and_the_flow(prefect_server, flow_project, first_wave):
    run = first_wave["failing"]
    assert state(run) == "FAILED"
    assert "boom: the input was 3" in run["state"]["message"]
    tasks = task_runs(prefect_server, run["id"])
    assert state(tasks["ok"]) == "COMPLETED"
    assert state(tasks["boom"]) == "FAILED"
    assert "boom: the input was 3" in tasks["boom"]["state"]["message"]
    assert "after" not in tasks  # nothing downstream of the failure ran
    assert json.loads((flow_project / "data" / "02_intermediate" / "ok_out.json").read_text()) == 3
    hooks = [(c["hook"], c.get("node")) for c in hook_calls(flow_project, run)]
    assert ("on_node_error", "boom") in hooks
    assert hooks[-1] == ("on_pipeline_error", None)
    assert ("before_node_run", "after") not in hooks


def test_a_node_that_succeeds_on_retry_completes_the_flow(prefect_server, first_wave):
    run = first_wave["flaky"]
    assert completed(run)
    task_run = task_runs(prefect_server, run["id"])["fails_once"]
    assert state(task_run) == "COMPLETED"
    assert task_run["run_count"] == 2
    assert task_run["tags"] == ["flaky"]


def test_independent_nodes_run_concurrently(prefect_server, first_wave):
    run = first_wave["sleepy"]
    assert completed(run)
    tasks = task_runs(prefect_server, run["id"]).values()
    assert len(tasks) == 4
    last_start = max(timestamp(t["start_time"]) for t in tasks)
    first_end = min(timestamp(t["end_time"]) for t in tasks)
    assert last_start < first_end  # all four were running at one moment


def test_group_by_namespace_makes_one_task_per_namespace(prefect_server, first_wave):
    run = first_wave["namespaced"]
    assert completed(run)
    tasks = task_runs(prefect_server, run["id"])
    assert set(tasks) == {"seed", "alpha", "beta"}
    seed_id = tasks["seed"]["id"]
    for group in ("alpha", "beta"):
        assert tasks[group]["task_inputs"]["wait_for"] == [{"input_type": "task_run", "id": seed_id}]


def test_an_unknown_pipeline_fails_at_once_naming_the_available_ones(prefect_server, first_wave):
    run = first_wave["unknown"]
    assert state(run) == "FAILED"
    message = run["state"]["message"]
    assert "'no_such_pipeline'" in message and "'data_science'" in message
    assert task_runs(prefect_server, run["id"]) == {}


def test_runtime_params_change_outputs_and_versions_do_not_collide(flow_project, second_wave):
    assert completed(second_wave)
    assert json.loads((flow_project / "data" / "08_reporting" / "result.json").read_text()) == 21
    versions = sorted((flow_project / "data" / "02_intermediate" / "doubled.json").iterdir())
    assert [json.loads((v / "doubled.json").read_text()) for v in versions] == [6, 20]
