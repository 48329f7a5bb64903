"""A registered schedule really fires: the server's scheduler creates runs and a worker completes one."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from kedro_prefect_hooks.local.server import server_install_problems

from conftest import open_session, project_deployments
from prefect_runs import filter_runs, timestamp, wait_for_run


def scheduled_runs(api_url: str, deployment_id: str, timeout: float) -> list[dict]:
    """The deployment's runs, once the scheduler has created some."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = filter_runs(api_url, {"deployments": {"id": {"any_": [deployment_id]}}})
        if runs:
            return runs
        time.sleep(1)
    return []


def test_a_schedule_creates_runs_and_a_worker_completes_one(api_url, make_project, process_worker):
    # Prefect 3.8.8 with SQLAlchemy 2.1: the scheduler fails on every loop and this
    # deployment never gets a run, although the schedule is stored.
    first_run = (datetime.now(timezone.utc) + timedelta(seconds=20)).replace(microsecond=0)
    project = make_project(
        f"""
        pipelines: [data_processing]
        defaults:
          schedule: {{interval: 3600, anchor_date: "{first_run.isoformat()}"}}
        """
    )
    open_session(project)
    [deployment] = project_deployments(api_url, project)
    assert deployment["schedules"][0]["schedule"]["interval"] == 3600

    runs = scheduled_runs(api_url, deployment["id"], timeout=90)
    assert runs, "the server's scheduler created no run for the schedule"
    assert all(run["auto_scheduled"] for run in runs)
    earliest = min(runs, key=lambda run: run["expected_start_time"])
    assert timestamp(earliest["expected_start_time"]) == first_run

    finished = wait_for_run(api_url, earliest["id"], timeout=150)
    assert finished["state"]["type"] == "COMPLETED", finished["state"]["message"]


def test_server_install_problems_name_the_fix():
    assert server_install_problems({"prefect": "3.9.1", "fastapi": "0.150.0", "sqlalchemy": "2.1.9"}) == []
    assert server_install_problems({"prefect": "3.8.8", "fastapi": "0.150.0", "sqlalchemy": "2.0.44"}) == []
    fastapi, scheduler = server_install_problems(
        {"prefect": "3.8.8", "fastapi": "0.160.0", "sqlalchemy": "2.1.9"}
    )
    assert "fastapi<0.151" in fastapi and "kedro-prefect-hooks[server]" in fastapi
    assert "schedules would never create runs" in scheduler and "sqlalchemy<2.1" in scheduler
    assert server_install_problems({"prefect": None, "fastapi": None, "sqlalchemy": None}) == []
