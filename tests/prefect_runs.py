"""Triggering deployments and reading what their runs did, through the Prefect REST API."""

from __future__ import annotations

import time
from datetime import datetime

import httpx

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def timestamp(text: str) -> datetime:
    """A timestamp of the API; Python 3.10's fromisoformat does not read the trailing "Z"."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def call_api(method: str, url: str, *, check: bool = True, **kwargs) -> httpx.Response:
    """One request, retried while the server answers 429/502/503, as Prefect's client does.

    A busy SQLite makes a real server answer 503 now and then (seen in CI on a
    plain DELETE), and a loaded CI machine made a GET wait past 10 s: answers get
    30 s, and a refused connection (or a GET that timed out) is tried again. Every direct API
    call in the tests goes through here.
    `check=False` returns an error answer instead of raising it.
    """
    for attempt in range(20):
        try:
            response = httpx.request(method, url, timeout=30, **kwargs)
        except (httpx.ReadTimeout, httpx.ConnectError) as error:
            # a POST that timed out may have been done: only a refused connection is tried again
            if attempt == 19 or (method != "GET" and isinstance(error, httpx.ReadTimeout)):
                raise
            time.sleep(0.5)
            continue
        if response.status_code not in (429, 502, 503):
            break
        time.sleep(0.5)
    if check:
        response.raise_for_status()
    return response


def trigger(api_url: str, deployment_id: str, parameters: dict | None = None) -> str:
    """What `prefect deployment run` does: a scheduled flow run for the worker to pick up."""
    response = call_api(
        "POST",
        f"{api_url}/deployments/{deployment_id}/create_flow_run",
        json={"parameters": parameters or {}},
    )
    return response.json()["id"]


def wait_for_run(api_url: str, flow_run_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = call_api("GET", f"{api_url}/flow_runs/{flow_run_id}").json()
        if run["state"] and run["state"]["type"] in TERMINAL:
            return run
        time.sleep(0.5)
    raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout} s: {run['state']}")


def retry_like_the_ui(api_url: str, flow_run_id: str) -> None:
    """What the Retry button sends (Prefect's UI v2); a worker then runs the same flow run again."""
    call_api(
        "POST",
        f"{api_url}/flow_runs/{flow_run_id}/set_state",
        json={
            "state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"},
            "force": True,
        },
    )


def wait_for_attempt(api_url: str, flow_run_id: str, attempt: int, timeout: float = 180) -> dict:
    """The flow run once its attempt `attempt` (its run count) ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = call_api("GET", f"{api_url}/flow_runs/{flow_run_id}").json()
        if run["run_count"] >= attempt and run["state"]["type"] in TERMINAL:
            return run
        time.sleep(0.5)
    raise TimeoutError(f"attempt {attempt} of {flow_run_id} did not end: {run['state']}")


def _filter(api_url: str, what: str, body: dict) -> list[dict]:
    return call_api("POST", f"{api_url}/{what}/filter", json=body).json()


def filter_runs(api_url: str, body: dict) -> list[dict]:
    """Flow runs matching a /flow_runs/filter body."""
    return _filter(api_url, "flow_runs", body)


def task_runs(api_url: str, flow_run_id: str, timeout: float = 30) -> dict[str, dict]:
    """The flow run's task runs by name, once all are in a final state and two reads agree: task
    run states reach the server a moment after the flow run's, later still on a busy machine."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        runs = _filter(api_url, "task_runs", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
        states = {run["name"]: (run["state"] or {}).get("type") for run in runs}
        settled = states == previous and all(state in TERMINAL for state in states.values())
        if settled or time.monotonic() > deadline:
            return {run["name"]: run for run in runs}
        previous = states
        time.sleep(0.5)


def run_logs(api_url: str, flow_run_id: str) -> list[dict]:
    """Every log line of the run, 200 a page."""
    found: list[dict] = []
    while True:
        body = {
            "logs": {"flow_run_id": {"any_": [flow_run_id]}},
            "sort": "TIMESTAMP_ASC",
            "limit": 200,
            "offset": len(found),
        }
        page = _filter(api_url, "logs", body)
        found += page
        if len(page) < 200:
            return found


def settled_logs(
    api_url: str, flow_run_id: str, expected: str, timeout: float = 30, exact: bool = True
) -> list[str]:
    """The run's log messages once `expected` is among them (or, `exact=False`, in one of them):
    a run's last lines reach the server a moment after its state, later still on a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        messages = [log["message"] for log in run_logs(api_url, flow_run_id)]
        found = expected in messages if exact else any(expected in message for message in messages)
        if found or time.monotonic() > deadline:
            return messages
        time.sleep(1)


def run_artifacts(api_url: str, flow_run_id: str) -> list[dict]:
    return _filter(api_url, "artifacts", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})


def asset_events(api_url: str, prefix: str, flow_run_id: str, at_least: int = 0) -> list[dict]:
    """The asset events about resources under `prefix`, once the run's own task-run events are in
    the feed (the client sends both on one connection, the asset events first), and at least
    `at_least` materialization events: Dask workers send theirs on connections of their own."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10)
    deadline = time.monotonic() + 60
    while True:
        task_events = call_api(
            "POST",
            f"{api_url}/events/filter",
            json={
                "filter": {
                    "event": {"prefix": ["prefect.task-run."]},
                    "related": {"id": [f"prefect.flow-run.{flow_run_id}"]},
                },
                "limit": 50,
            },
        ).json()["events"]
        ended = [
            e for e in task_events if e["event"] in ("prefect.task-run.Completed", "prefect.task-run.Failed")
        ]
        if ended or time.monotonic() > deadline:
            break
        time.sleep(1)
    while True:
        events = call_api(
            "POST",
            f"{api_url}/events/filter",
            json={
                "filter": {"event": {"prefix": ["prefect.asset."]}, "any_resource": {"id_prefix": [prefix]}},
                "limit": 50,
            },
        ).json()["events"]
        made = [e for e in events if e["event"].startswith("prefect.asset.materialization.")]
        if len(made) >= at_least or time.monotonic() > deadline:
            return events
        time.sleep(1)
