"""Runs that cannot hurt each other or hang forever: one run at a time per deployment by
default, and a run whose worker and machine vanish is marked CRASHED."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

from kedro_prefect_hooks.local.worker import record_path, running_workers, stop_worker

from conftest import open_session, project_deployments
from kedro_projects import add_flow_pipelines
from prefect_runs import call_api, timestamp, trigger, wait_for_run


def state_names(api_url: str, flow_run_id: str) -> list[str]:
    states = call_api("GET", f"{api_url}/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
    return [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])]


def test_runs_of_one_deployment_run_one_at_a_time_by_default(api_url, make_project, process_worker):
    """Seen: two runs at once wrote the same non-versioned dataset, read each other's data, both COMPLETED."""
    project = add_flow_pipelines(make_project("pipelines: [sleepy]\n"))
    open_session(project)
    [deployment] = project_deployments(api_url, project)
    assert deployment["global_concurrency_limit"]["limit"] == 1
    first, second = (trigger(api_url, deployment["id"], {"params": {"nap": 2}}) for _ in range(2))
    runs = sorted((wait_for_run(api_url, run) for run in (first, second)), key=lambda r: r["start_time"])
    assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"]
    assert timestamp(runs[1]["start_time"]) >= timestamp(runs[0]["end_time"])
    assert "AwaitingConcurrencySlot" in state_names(api_url, runs[1]["id"])


def flow_run_processes(flow_run_id: str) -> list[int]:
    """Processes whose environment carries the flow run's id: the run the worker started."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode() in (proc / "environ").read_bytes()
            ):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_for_state(api_url: str, flow_run_id: str, wanted: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = call_api("GET", f"{api_url}/flow_runs/{flow_run_id}").json()
        if run["state"] and run["state"]["type"] == wanted:
            return run
        time.sleep(1)
    return run


def test_a_run_whose_worker_and_process_are_killed_is_marked_crashed(api_url, make_project):
    """Seen: after SIGKILL (reboot, OOM killer) a run stayed RUNNING for 15 minutes and more."""
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    project = add_flow_pipelines(
        make_project(
            f"pipelines: [sleepy]\nwork_pool: {{name: {pool}}}\nworker: {{start: true, query_seconds: 1}}\n"
            "mark_crashed_runs: true\n"
        )
    )
    try:
        open_session(project)
        [deployment] = project_deployments(api_url, project)
        assert deployment["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
        run_id = trigger(api_url, deployment["id"], {"params": {"nap": 600}})
        assert wait_for_state(api_url, run_id, "RUNNING", timeout=90)["state"]["type"] == "RUNNING"
        time.sleep(5)  # the first heartbeat is sent as the run starts

        worker = running_workers(project)[pool]
        victims = flow_run_processes(run_id)
        assert victims, "the flow run's process was not found"
        os.killpg(worker.pid, signal.SIGKILL)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()

        crashed = wait_for_state(api_url, run_id, "CRASHED", timeout=180)
        assert crashed["state"]["type"] == "CRASHED", crashed["state"]
        assert "heartbeat" in crashed["state"]["message"]
        print(f"marked CRASHED {time.monotonic() - killed:.0f} s after the SIGKILL")
    finally:
        stop_worker(project, pool, timeout=5)
        record_path(project, pool).unlink(missing_ok=True)
