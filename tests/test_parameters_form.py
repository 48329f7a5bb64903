"""The run form shows the pipeline's own parameters, typed, with their values; a change in the form
is `kedro run --params key=value`, no change reads parameters.yml at run time. Real server and worker."""

from __future__ import annotations

import json

import pytest

from kedro_prefect_hooks.parameters_form import changed_values, defaults_of, parameters_schema

from conftest import open_session, project_deployments
from kedro_projects import add_flow_pipelines
from prefect_runs import trigger, wait_for_run


def test_the_schema_is_typed_nested_and_defaults_to_the_current_values():
    values = {"model_options": {"test_size": 0.2, "random_state": 3, "features": ["a", "b"]}, "verbose": True}
    schema = parameters_schema(values)
    options = schema["properties"]["model_options"]
    assert options["type"] == "object"
    assert options["properties"]["test_size"] == {"title": "test_size", "default": 0.2, "type": "number"}
    assert options["properties"]["random_state"]["type"] == "integer"
    assert options["properties"]["features"]["type"] == "array"
    assert schema["properties"]["verbose"] == {"title": "verbose", "default": True, "type": "boolean"}
    assert defaults_of(schema) == values


def test_only_changed_values_are_passed_on():
    defaults = {"model_options": {"test_size": 0.2, "random_state": 3}, "verbose": True}
    given = {"model_options": {"test_size": 0.3, "random_state": 3}, "verbose": True}
    assert changed_values(given, defaults) == {"model_options": {"test_size": 0.3}}
    assert changed_values(defaults, defaults) == {}


@pytest.fixture
def form_project(api_url, make_project):
    project = add_flow_pipelines(make_project("pipelines: [data_processing, data_science]\ntimeout: 30\n"))
    open_session(project)
    return project


def doubled(project) -> int:
    versions = sorted((project / "data" / "02_intermediate" / "doubled.json").iterdir())
    return json.loads((versions[-1] / "doubled.json").read_text())


def test_the_deployment_form_carries_the_pipelines_parameters(api_url, form_project):
    by_name = {d["name"]: d for d in project_deployments(api_url, form_project)}
    form = by_name["data_processing"]["parameter_openapi_schema"]["properties"]["parameters"]
    assert form["properties"] == {"start": {"title": "start", "default": 3, "type": "integer"}}
    assert (
        "parameters" not in by_name["data_processing"]["parameters"]
    )  # no preset: parameters.yml at run time
    # data_science takes no parameter: the generic field stays
    assert "properties" not in by_name["data_science"]["parameter_openapi_schema"]["properties"]["parameters"]


def test_changing_parameters_yml_rewrites_only_the_deployments_whose_form_changed(api_url, form_project):
    before = {d["name"]: d["updated"] for d in project_deployments(api_url, form_project)}
    (form_project / "conf" / "base" / "parameters.yml").write_text("start: 4\nnap: 0.5\n")
    open_session(form_project)
    after = {d["name"]: d for d in project_deployments(api_url, form_project)}
    assert after["data_science"]["updated"] == before["data_science"]
    assert after["data_processing"]["updated"] != before["data_processing"]
    form = after["data_processing"]["parameter_openapi_schema"]["properties"]["parameters"]
    assert form["properties"]["start"]["default"] == 4


def test_a_run_with_a_changed_form_value_and_one_with_none_changed(api_url, form_project, process_worker):
    [deployment] = [d for d in project_deployments(api_url, form_project) if d["name"] == "data_processing"]
    changed = wait_for_run(api_url, trigger(api_url, deployment["id"], {"parameters": {"start": 5}}))
    assert changed["state"]["type"] == "COMPLETED", changed["state"]["message"]
    assert doubled(form_project) == 10  # as `kedro run --params start=5`

    # parameters.yml changes after registration; the form still shows 3 and is sent unchanged,
    # as the UI's run form does: the run reads parameters.yml as it is now
    (form_project / "conf" / "base" / "parameters.yml").write_text("start: 7\nnap: 0.5\n")
    unchanged = wait_for_run(api_url, trigger(api_url, deployment["id"], {"parameters": {"start": 3}}))
    assert unchanged["state"]["type"] == "COMPLETED", unchanged["state"]["message"]
    assert doubled(form_project) == 14
