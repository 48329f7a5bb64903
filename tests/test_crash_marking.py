"""Crash marking judges only the runs that send the frequent heartbeat, and `auto` turns it on
whenever the API is this project's local server, however its URL was found. Real servers, a
real worker, real runs."""

from __future__ import annotations

import time
import uuid

from kedro_prefect_hooks.local.server import free_port, stop_local_server
from kedro_prefect_hooks.registration.automations import CRASH_AUTOMATION

from conftest import kedro, open_session, project_deployments, start_process_worker, stop_process
from kedro_projects import add_flow_pipelines
from prefect_runs import call_api, trigger, wait_for_run


def crash_automation(api_url: str) -> dict:
    [automation] = call_api(
        "POST", f"{api_url}/automations/filter", json={"automations": {"name": {"any_": [CRASH_AUTOMATION]}}}
    ).json()
    return automation


def state_types(api_url: str, flow_run_id: str) -> list[str]:
    states = call_api("GET", f"{api_url}/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
    return [s["type"] for s in sorted(states, key=lambda s: s["timestamp"])]


def events_of(api_url: str, flow_run_id: str, name: str, timeout: float = 60) -> list[dict]:
    """The run's events called `name` in the server's event store, once there is one."""
    body = {"filter": {"event": {"name": [name]}, "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}}}
    deadline = time.monotonic() + timeout
    while True:
        found = call_api("POST", f"{api_url}/events/filter", json=body).json()["events"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def judged_by(automation: dict, event: dict) -> bool:
    """Whether the server's trigger takes `event` into account: its own matching code, on the
    event as the server stored it. For the crash automation, a run whose events it covers is a
    run it marks CRASHED after 90 s without another event; one it does not cover, it never does."""
    from prefect.server.events.schemas.automations import Automation
    from prefect.server.events.schemas.events import ReceivedEvent

    trigger = Automation.model_validate(automation).trigger
    return trigger.covers(ReceivedEvent.model_validate(event))


def test_a_healthy_run_of_a_deployment_that_opted_out_is_never_judged(api_url, make_project, tmp_path):
    """Seen: with the automation on the server (another project opted in), a 200 s node of a
    project with `mark_crashed_runs: false` went RUNNING -> CRASHED at ~102 s -> COMPLETED: its
    runs beat every 180 s, and the automation judged every run of the plugin's deployments.

    Instead of waiting 100 s for the automation to strike, the test asks the server's own
    trigger whether it covers each run's real events: the opted-in run's (the check can fail),
    and the opted-out run's, which must never be; that run then completes, never CRASHED."""
    pool = f"crash-{uuid.uuid4().hex[:6]}"
    conf = f"pipelines: [sleepy]\ntimeout: 30\nwork_pool: {{name: {pool}}}\n"
    opted_in = add_flow_pipelines(make_project(conf + "mark_crashed_runs: true\n"))
    opted_out = add_flow_pipelines(make_project(conf + "mark_crashed_runs: false\n"))
    open_session(opted_in)
    open_session(opted_out)
    automation = crash_automation(api_url)
    [judged] = project_deployments(api_url, opted_in)
    [spared] = project_deployments(api_url, opted_out)
    assert "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" not in (spared["job_variables"].get("env") or {})

    worker = start_process_worker(api_url, pool, tmp_path / "worker.log")
    try:
        runs = {
            "judged": trigger(api_url, judged["id"], {"params": {"nap": 2}}),
            "spared": trigger(api_url, spared["id"], {"params": {"nap": 2}}),
        }
        # each run's Running event, once it started (seen in CI: a 2 s run was over before a
        # poll of its state saw it RUNNING)
        running = {
            key: events_of(api_url, run_id, "prefect.flow-run.Running", timeout=120)
            for key, run_id in runs.items()
        }
        assert running["judged"] and running["spared"], running
        assert judged_by(automation, running["judged"][0])
        assert not judged_by(automation, running["spared"][0]), running["spared"][0]["related"]
        for heartbeat in events_of(api_url, runs["spared"], "prefect.flow-run.heartbeat", timeout=5):
            assert not judged_by(automation, heartbeat)

        for run_id in runs.values():
            finished = wait_for_run(api_url, run_id, timeout=120)
            assert finished["state"]["type"] == "COMPLETED", finished["state"]
            assert "CRASHED" not in state_types(api_url, run_id)
    finally:
        stop_process(worker)


def test_auto_marks_crashed_runs_on_the_local_server_whatever_names_its_url(make_project, monkeypatch):
    """Seen: exporting the URL `kedro prefect server start` printed, or setting it in .env, turned
    crash marking off (`auto` looked at how the URL was found, not at what it is)."""
    # timeout: 30: each session must register, however slowly the just-started server answers
    project = make_project(
        f"pipelines: [data_science]\ntimeout: 30\nwork_pool: {{name: pool-{uuid.uuid4().hex[:6]}}}\n"
    )
    port = free_port()
    started = kedro(project, "prefect", "server", "start", "--port", str(port), timeout=360)
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}/api"
    try:
        (project / "prefect.toml").unlink()  # the URL comes from elsewhere now
        for where in ("PREFECT_API_URL", ".env"):
            if where == "PREFECT_API_URL":
                monkeypatch.setenv("PREFECT_API_URL", f"http://localhost:{port}/api/")
            else:
                monkeypatch.delenv("PREFECT_API_URL")
                (project / ".env").write_text(f"PREFECT_API_URL={url}\n")
                monkeypatch.chdir(project)
            open_session(project)
            [deployment] = project_deployments(url, project)
            assert deployment["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30", where
            automation = crash_automation(url)
            call_api("DELETE", f"{url}/deployments/{deployment['id']}")  # the next round registers afresh
            call_api("DELETE", f"{url}/automations/{automation['id']}")
    finally:
        stop_local_server(project, timeout=10)
