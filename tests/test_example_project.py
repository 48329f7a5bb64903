"""The example project of the README, run through Prefect the way the demo does it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import kedro

from kedro_prefect_hooks.local.worker import running_workers, stop_worker

from conftest import open_session, project_deployments
from prefect_runs import task_runs, trigger, wait_for_run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "coffee-sales"


def test_example_registers_starts_its_worker_and_runs(api_url, tmp_path):
    project = Path(
        shutil.copytree(
            EXAMPLE,
            tmp_path / "coffee-sales",
            ignore=shutil.ignore_patterns(".kedro-prefect", "02_*", "08_*"),
        )
    )
    # Older Kedro 1.x releases refuse a project whose kedro_init_version has another minor
    # version (Kedro 1.7 compares the major only); the matrix runs Kedro 1.0 too.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'kedro_init_version = "1.7.0"', f'kedro_init_version = "{kedro.__version__}"'
        )
    )
    try:
        open_session(project)  # conf/local/prefect.yml has worker.start: the hook starts one
        assert list(running_workers(project)) == ["coffee-sales"]
        deployments = {d["name"]: d for d in project_deployments(api_url, project)}
        assert set(deployments) == {"__default__", "data_processing", "store_reports"}
        assert {d["flow_name"] for d in deployments.values()} == {"Coffee Sales"}

        processing = wait_for_run(api_url, trigger(api_url, deployments["data_processing"]["id"]))
        assert processing["state"]["type"] == "COMPLETED", processing["state"]["message"]
        reports = wait_for_run(api_url, trigger(api_url, deployments["store_reports"]["id"]))
        assert reports["state"]["type"] == "COMPLETED", reports["state"]["message"]
        assert set(task_runs(api_url, reports["id"])) == {"north", "south"}  # group_by: namespace
        north = json.loads((project / "data" / "08_reporting" / "north_summary.json").read_text())
        assert north == {"cups": 159, "revenue": 429.3, "best_seller": "espresso"}
    finally:
        for pool in running_workers(project):
            stop_worker(project, pool, timeout=5)
