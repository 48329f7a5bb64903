"""Tasks on Dask: a temporary local cluster of processes and an external scheduler with two workers,
both real; outputs equal `kedro run`'s, failures stop what depends on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import invoke, kedro
from dask_cluster import external_cluster
from kedro_projects import add_flow_pipelines, copy_project
from prefect_runs import asset_events, settled_logs

pytest.importorskip("prefect_dask")

BIN = Path(sys.executable).parent


def outputs(project: Path) -> dict:
    folder = project / "data"
    return {
        "gathered": json.loads((folder / "08_reporting" / "gathered.json").read_text()),
        "kept": json.loads((folder / "07_model_output" / "kept.json").read_text()),
        "parts": [
            json.loads((folder / "07_model_output" / f"spread_{i}.json").read_text()) for i in range(4)
        ],
    }


def test_a_local_cluster_runs_tasks_in_worker_processes_with_kedro_run_outputs(api_url, run_flow):
    project, state, tasks = run_flow("defaults: {run: {task_runner: dask}}\n", "spread")
    assert state.is_completed(), state.message
    # group_by: memory (the default under dask): halve and keep share the in-memory "halved"
    assert set(tasks) == {"part_0", "part_1", "part_2", "part_3", "halve (+1)", "gather"}
    found = outputs(project)
    worker_pids = {p["pid"] for p in found["parts"]} | {found["kept"]["pid"]}
    assert os.getpid() not in worker_pids and len(worker_pids) >= 2
    assert found["kept"]["value"] == 1.5 and found["gathered"]["total"] == 30
    # the asset events come from the Dask workers' processes (issue 22)
    events = asset_events(
        api_url, f"file://{project}/data/", str(state.state_details.flow_run_id), at_least=6
    )
    made = {e["resource"]["prefect.resource.name"] for e in events if e["event"].endswith("succeeded")}
    assert made == {"spread_0", "spread_1", "spread_2", "spread_3", "kept", "gathered"}, events

    plain = kedro(project, "run", "--pipeline", "spread")  # the same pipeline under `kedro run`
    assert plain.returncode == 0, plain.stderr
    again = outputs(project)
    assert {k: v for k, v in again["gathered"].items() if k != "pids"} == {
        k: v for k, v in found["gathered"].items() if k != "pids"
    }
    assert again["kept"]["value"] == found["kept"]["value"]

    hooks = [
        json.loads(line) for line in (project / "data" / "hooks-in-process.jsonl").read_text().splitlines()
    ]
    assert {c["node"] for c in hooks if c["hook"] == "before_node_run"} >= {"part_0", "gather", "keep"}
    assert [c["hook"] for c in hooks].count("before_pipeline_run") == 2  # the flow's, then `kedro run`'s

    logs = settled_logs(
        api_url,
        str(state.state_details.flow_run_id),
        "Running node: gather: gather([spread_0;spread_1;spread_2;spread_3]) -> [gathered]",
    )
    assert any("Running node: part_3" in m for m in logs)  # Kedro's lines, from the worker processes


def test_a_failing_node_on_dask_fails_the_run_with_nothing_downstream(run_flow):
    project, state, tasks = run_flow("defaults: {run: {task_runner: dask}}\n", "spread_failing")
    assert state.is_failed()
    assert "Kedro node 'breaks' failed: ValueError: boom in a worker" in state.message
    assert "--from-nodes breaks" in state.message
    assert tasks["breaks"]["state"]["type"] == "FAILED" and "after_break" not in tasks
    assert (project / "data" / "07_model_output" / "spread_0.json").exists()  # the independent node ran


def test_in_memory_data_between_processes_is_refused_before_any_node_runs(run_flow):
    project, state, tasks = run_flow("defaults: {run: {task_runner: dask, group_by: none}}\n", "spread")
    assert state.is_failed()
    assert (
        "'halved' (node halve -> node keep)" in state.message
        and "Declare them in the catalog" in state.message
    )
    assert tasks == {} and not (project / "data" / "07_model_output").exists()


def test_an_external_scheduler_and_two_workers(api_url, run_flow, tmp_path):
    elsewhere = tmp_path / "dask"
    elsewhere.mkdir()
    with external_cluster(elsewhere) as (address, workers):
        project, state, _ = run_flow(
            f"defaults: {{run: {{task_runner: dask, dask: {{address: '{address}'}}}}}}\n", "spread"
        )
        assert state.is_completed(), state.message + "".join(
            p.read_text()[-2000:] for p in elsewhere.glob("*.log")
        )
        found = outputs(project)
        worker_pids = {p["pid"] for p in found["parts"]}
        assert len(worker_pids) == 2 and os.getpid() not in worker_pids
        assert worker_pids <= {p.pid for p in workers} | _children(workers)
        assert found["gathered"]["total"] == 30


def _children(processes: list[subprocess.Popen]) -> set[int]:
    """`dask worker` runs its worker in a child process (a nanny)."""
    parents = {p.pid for p in processes}
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) in parents
            ):
                found.add(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_wait_and_filters_count_memory_groups_on_a_worker(
    api_url, project_template, tmp_path, process_worker
):
    """Issue 18, 3: under `task_runner: dask` (group_by memory), `--wait` and every filter answered
    "Unsupported group_by strategy: memory. No run was created." (Kedro's group_nodes_by has no memory)."""
    project = add_flow_pipelines(
        copy_project(
            project_template, tmp_path, "pipelines: [spread]\ndefaults: {run: {task_runner: dask}}\n"
        )
    )
    assert invoke(project, "register").exit_code == 0
    ran = invoke(project, "run", "spread", "--wait", "--timeout", "240")
    assert ran.exit_code == 0, ran.output
    # part_0..3, "halve (+1)" (halve and keep share the in-memory "halved"), gather
    assert ran.output.splitlines()[-1] == "COMPLETED: 6/6 tasks completed", ran.output
    assert outputs(project)["kept"]["value"] == 1.5

    (project / "data" / "07_model_output" / "kept.json").unlink()
    again = invoke(project, "run", "spread", "--from-nodes", "halve", "--wait", "--timeout", "240")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "COMPLETED: 1/1 tasks completed", again.output
    assert outputs(project)["kept"]["value"] == 1.5
