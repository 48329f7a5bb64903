"""Retrying a failed flow run, as the UI's Retry does, resumes where it failed: a real worker and server."""

from __future__ import annotations

import json

import pytest

from conftest import open_session, project_deployments
from kedro_projects import add_flow_pipelines, add_pipeline, copy_project
from prefect_runs import (
    call_api,
    retry_like_the_ui,
    run_artifacts,
    settled_logs,
    trigger,
    wait_for_attempt,
    wait_for_run,
)


@pytest.fixture
def resumable(prefect_server, project_template, tmp_path, monkeypatch):
    project = add_flow_pipelines(copy_project(project_template, tmp_path, "pipelines: [resumable]\n"))
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    open_session(project)
    [deployment] = project_deployments(prefect_server, project)
    return project, deployment


def test_retry_skips_completed_persisted_nodes_and_remakes_in_memory_ones(
    prefect_server, process_worker, resumable
):
    project, deployment = resumable
    first = wait_for_run(prefect_server, trigger(prefect_server, deployment["id"]))
    assert first["state"]["type"] == "FAILED"
    message = first["state"]["message"]
    assert "Kedro node 'flaky_node' failed: RuntimeError: the first attempt fails here" in message
    assert (
        # flaky_node's in-memory input is remade by memory_node: Kedro's rule starts there
        "Retry this flow run" in message and "kedro prefect run resumable --from-nodes memory_node" in message
    )

    retry_like_the_ui(prefect_server, first["id"])
    second = wait_for_attempt(prefect_server, first["id"], attempt=2)
    assert second["state"]["type"] == "COMPLETED", second["state"]["message"]

    calls = (project / "data" / "resumable-upstream-calls").read_text().splitlines()
    assert calls == ["called"]  # the persisted upstream node ran once
    result = json.loads((project / "data" / "08_reporting" / "resumed_result.json").read_text())
    assert result == 30 + 4  # upstream's saved output, and the in-memory input made again

    runs = call_api(
        "POST", f"{prefect_server}/task_runs/filter", json={"flow_runs": {"id": {"any_": [first["id"]]}}}
    ).json()
    by_attempt = {(r["name"], r["flow_run_run_count"]) for r in runs}
    assert {name for name, attempt in by_attempt if attempt == 2} == {"memory_node", "flaky_node"}
    assert ("upstream_node", 1) in by_attempt

    logs = settled_logs(
        prefect_server,
        first["id"],
        "Resuming: running memory_node again: their in-memory outputs feed nodes that run now",
    )
    assert any(
        m.startswith("Resuming: skipping upstream_node: completed in an earlier attempt") for m in logs
    )
    assert any("Resuming: loading 'upstream' at version" in m for m in logs)
    reports = [a for a in run_artifacts(prefect_server, first["id"]) if a["key"] == "kedro-resumable"]
    latest = max(reports, key=lambda artifact: artifact["created"])
    assert (
        r"| upstream\_node | skipped: completed in an earlier attempt (this is attempt 2)" in latest["data"]
    )


UNVERSIONED_MIDDLE = """
from pathlib import Path

from kedro.pipeline import Pipeline, node


def make(start):
    return {"made": start}


def flaky(mid):
    marker = Path("data") / "flaky-attempted"
    if not marker.exists():
        marker.write_text("1")
        raise RuntimeError("first attempt fails (marker absent)")
    return {"out": mid["made"] + 1}


def create_pipeline(**kwargs):
    return Pipeline([node(make, "params:start", "c_mid", name="make"), node(flaky, "c_mid", "c_out", name="flaky")])
"""


def test_retry_loads_an_unversioned_dataset_a_skipped_node_wrote(
    prefect_server, process_worker, project_template, tmp_path, monkeypatch
):
    """Issue 18, 1: every kedro-datasets dataset is an AbstractVersionedDataset; Retry loaded the
    unversioned c_mid "at version ...Z" and failed: Not a directory: data/c_mid.json/<version>/c_mid.json.
    Issue 18, 7: the failure message ran two sentences together: "(marker absent) To resume"."""
    project = copy_project(project_template, tmp_path, "pipelines: [unversioned_mid]\n")
    add_pipeline(
        project,
        "unversioned_mid",
        UNVERSIONED_MIDDLE,
        catalog="""
            c_mid: {type: json.JSONDataset, filepath: data/c_mid.json}
            c_out: {type: json.JSONDataset, filepath: data/c_out.json}
        """,
    )
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    open_session(project)
    [deployment] = project_deployments(prefect_server, project)
    first = wait_for_run(prefect_server, trigger(prefect_server, deployment["id"]))
    assert first["state"]["type"] == "FAILED"

    retry_like_the_ui(prefect_server, first["id"])
    second = wait_for_attempt(prefect_server, first["id"], attempt=2)
    assert second["state"]["type"] == "COMPLETED", second["state"]["message"]
    assert "(marker absent). To resume: Retry this flow run" in first["state"]["message"]
    assert json.loads((project / "data" / "c_out.json").read_text()) == {"out": 4}
    runs = call_api(
        "POST", f"{prefect_server}/task_runs/filter", json={"flow_runs": {"id": {"any_": [first["id"]]}}}
    ).json()
    assert {r["name"] for r in runs if r["flow_run_run_count"] == 2} == {"flaky"}  # make was skipped
    logs = settled_logs(
        prefect_server, first["id"], "Resuming: skipping make: completed in an earlier attempt", exact=False
    )
    assert not any("Resuming: loading 'c_mid' at version" in m for m in logs)
