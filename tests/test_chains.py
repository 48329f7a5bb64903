"""Pipelines that trigger pipelines: `after` becomes a Prefect deployment trigger, on a real server and worker."""

from __future__ import annotations

import time

from conftest import open_session, project_deployments
from kedro_projects import add_flow_pipelines
from prefect_runs import call_api, filter_runs, trigger, wait_for_run


def chain_automations(api_url: str, project) -> list[dict]:
    package = next(p.name for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    found = call_api(
        "POST",
        f"{api_url}/automations/filter",
        json={"automations": {"tags": {"all_": [f"kedro-project:{package}"]}}},
    ).json()
    return sorted(found, key=lambda a: a["name"])


def runs_of(api_url: str, deployment_id: str) -> list[dict]:
    return filter_runs(api_url, {"deployments": {"id": {"any_": [deployment_id]}}})


def wait_for_runs_of(api_url: str, deployment_id: str, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(found := runs_of(api_url, deployment_id)) >= count:
            return found
        time.sleep(1)
    return runs_of(api_url, deployment_id)


def test_a_completed_run_triggers_the_next_pipeline_and_a_failed_one_does_not(
    shared_api_url, make_project, shared_worker
):
    project = add_flow_pipelines(
        make_project(
            "pipelines: [data_processing, data_science, failing]\n"
            "timeout: 30\n"  # each session must write everything, however loaded the machine
            "deployments:\n"
            "  data_science: {after: [data_processing]}\n"
        )
    )
    open_session(project)
    by_name = {d["name"]: d for d in project_deployments(shared_api_url, project)}
    [automation] = chain_automations(shared_api_url, project)
    assert "data_science when" in automation["name"] and "data_processing completes" in automation["name"]

    first = wait_for_run(shared_api_url, trigger(shared_api_url, by_name["data_processing"]["id"]))
    assert first["state"]["type"] == "COMPLETED", first["state"]["message"]
    [chained] = wait_for_runs_of(shared_api_url, by_name["data_science"]["id"], 1)
    assert wait_for_run(shared_api_url, chained["id"])["state"]["type"] == "COMPLETED"

    failing = wait_for_run(shared_api_url, trigger(shared_api_url, by_name["failing"]["id"]))
    assert failing["state"]["type"] == "FAILED"
    (project / "conf" / "base" / "prefect.yml").write_text(
        "pipelines: [data_processing, data_science, failing]\n"
        "timeout: 30\n"
        "deployments:\n"
        "  data_science: {after: [data_processing]}\n"
        "  data_processing: {after: [failing]}\n"
    )
    open_session(project)  # now failing -> data_processing -> data_science
    assert len(chain_automations(shared_api_url, project)) == 2
    again = wait_for_run(shared_api_url, trigger(shared_api_url, by_name["failing"]["id"]))
    assert again["state"]["type"] == "FAILED"
    time.sleep(10)  # time enough for a trigger to fire, if it wrongly did
    assert len(runs_of(shared_api_url, by_name["data_processing"]["id"])) == 1  # only the manual run


def test_removing_after_removes_the_trigger_and_a_change_is_idempotent(shared_api_url, make_project):
    conf = "pipelines: [data_processing, data_science]\ntimeout: 30\ndeployments:\n  data_science: {after: [data_processing]}\n"
    project = make_project(conf)
    open_session(project)
    [before] = chain_automations(shared_api_url, project)
    open_session(project)
    (project / "conf" / "base" / "prefect.yml").write_text(conf + "defaults: {tags: [nightly]}\n")
    open_session(project)  # deployments rewritten, the trigger kept as it is
    assert [a["id"] for a in chain_automations(shared_api_url, project)] == [before["id"]]

    (project / "conf" / "base" / "prefect.yml").write_text(
        "pipelines: [data_processing, data_science]\ntimeout: 30\n"
    )
    open_session(project)
    assert chain_automations(shared_api_url, project) == []
