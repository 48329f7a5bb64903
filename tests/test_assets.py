"""Kedro datasets as Prefect assets: the events a flow run emits, read back from a real server's
event feed, and the asset keys datasets get (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import AbstractDataset
from kedro_datasets.json import JSONDataset
from test_chains import chain_automations, wait_for_runs_of

from kedro_prefect_hooks.asset_keys import asset_key

from conftest import kedro, open_session, project_deployments
from kedro_projects import add_flow_pipelines
from prefect_runs import asset_events

BOOM_CATALOG = "boom_out:\n  type: json.JSONDataset\n  filepath: data/02_intermediate/boom_out.json\n"


class NoPath(AbstractDataset):
    """A dataset with no file behind it (a database table, an API)."""

    def _load(self):
        return None

    def _save(self, data):
        pass

    def _describe(self):
        return {"table": "shuttles"}


class Described(NoPath):
    """A dataset that describes itself as given."""

    def __init__(self, **description):
        self.description = description

    def _describe(self):
        return self.description


def test_asset_keys_are_the_datasets_uris(tmp_path):
    local = JSONDataset(filepath=str(tmp_path / "data" / "x.json"))
    assert asset_key("x", local, "proj") == f"file://{tmp_path}/data/x.json"
    versioned = JSONDataset(filepath=str(tmp_path / "v.json"), version=None)
    assert asset_key("v", versioned, "proj") == f"file://{tmp_path}/v.json"
    # what kedro-datasets describe for `filepath: s3://bucket/folder/y.csv` (s3fs is not installed here)
    assert asset_key("y", Described(filepath="bucket/folder/y.csv", protocol="s3"), "p") == (
        "s3://bucket/folder/y.csv"
    )
    assert asset_key("shuttles", NoPath(), "spaceflights") == "kedro://spaceflights/shuttles"
    # Prefect refuses spaces (and % to escape them) in a key: the dataset's name stands in
    spaced = JSONDataset(filepath=str(tmp_path / "my data" / "z.json"))
    assert asset_key("z", spaced, "my proj") == "kedro://my-proj/z"


@pytest.mark.parametrize("task_runner", ["sequential", "threads"])
def test_each_persisted_output_is_a_materialized_asset_with_its_inputs_upstream(
    api_url, run_flow, task_runner
):
    project, state, _ = run_flow(f"defaults: {{run: {{task_runner: {task_runner}}}}}\n", "__default__")
    assert state.is_completed(), state.message
    prefix = f"file://{project}/data/"
    events = asset_events(api_url, prefix, str(state.state_details.flow_run_id))
    doubled, result = prefix + "02_intermediate/doubled.json", prefix + "08_reporting/result.json"
    made = {e["resource"]["prefect.resource.id"]: e for e in events if e["event"].endswith("succeeded")}
    assert set(made) == {doubled, result}, [(e["event"], e["resource"]) for e in events]
    assert made[result]["resource"]["prefect.resource.name"] == "result"
    related = {(r["prefect.resource.id"], r["prefect.resource.role"]) for r in made[result]["related"]}
    assert {(doubled, "asset"), ("kedro", "asset-materialized-by")} <= related
    payload = made[doubled]["payload"]["kedro"]
    assert (payload["pipeline"], payload["node"], payload["dataset"], payload["env"]) == (
        "__default__",
        "double",
        "doubled",
        "local",
    )
    assert payload["version"] == payload["save_version"]  # doubled is versioned: this run's version
    assert "version" not in made[result]["payload"]["kedro"]  # result is not
    referenced = [e for e in events if e["event"] == "prefect.asset.referenced"]
    assert [e["resource"]["prefect.resource.id"] for e in referenced] == [doubled]


def test_a_failed_node_emits_the_failed_event_and_assets_false_emits_none(api_url, run_flow):
    project, state, _ = run_flow("pipelines: all\n", "failing", conf={"base/catalog_boom.yml": BOOM_CATALOG})
    assert state.is_failed()
    events = asset_events(api_url, f"file://{project}/data/", str(state.state_details.flow_run_id))
    outcome = {(e["event"], e["resource"]["prefect.resource.id"].rsplit("/", 1)[-1]) for e in events}
    assert outcome == {
        ("prefect.asset.materialization.succeeded", "ok_out.json"),
        ("prefect.asset.materialization.failed", "boom_out.json"),
        ("prefect.asset.referenced", "ok_out.json"),
    }

    project, state, _ = run_flow("pipelines: all\ndefaults: {run: {assets: false}}\n", "__default__")
    assert state.is_completed(), state.message
    assert asset_events(api_url, f"file://{project}/", str(state.state_details.flow_run_id)) == []


def test_after_datasets_runs_the_deployment_when_the_dataset_is_materialized(
    api_url, make_project, monkeypatch
):
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from kedro_prefect_hooks.flow import kedro_pipeline

    conf = "pipelines: [data_processing, data_science, failing]\ntimeout: 30\n"
    project = add_flow_pipelines(
        make_project(
            conf + "deployments:\n  data_science: {after_datasets: [doubled]}\n"
            "  data_processing: {after_datasets: [boom_out]}\n"  # boom fails: boom_out is never saved
        )
    )
    (project / "conf" / "base" / "catalog_boom.yml").write_text(BOOM_CATALOG)
    open_session(project)
    by_name = {d["name"]: d for d in project_deployments(api_url, project)}
    automation = next(a for a in chain_automations(api_url, project) if "doubled" in a["name"])
    doubled = f"file://{project}/data/02_intermediate/doubled.json"
    assert automation["name"].endswith("data_science when doubled is materialized")
    assert automation["trigger"]["match"] == {"prefect.resource.id": doubled}
    before = sorted(a["id"] for a in chain_automations(api_url, project))
    open_session(project)  # unchanged: the triggers are kept as they are
    assert sorted(a["id"] for a in chain_automations(api_url, project)) == before

    monkeypatch.chdir(project)  # runs as a worker runs them; data_processing writes doubled
    with temporary_settings({PREFECT_API_URL: api_url}):
        assert kedro_pipeline(pipeline="failing", return_state=True).is_failed()
        assert kedro_pipeline(pipeline="data_processing", return_state=True).is_completed()
    EventsWorker.drain_all(timeout=10)
    [triggered] = wait_for_runs_of(api_url, by_name["data_science"]["id"], 1)
    assert triggered["deployment_id"] == by_name["data_science"]["id"]
    # boom_out's failed save came first: had it triggered, that run would be there by now
    assert wait_for_runs_of(api_url, by_name["data_processing"]["id"], 1, timeout=5) == []

    (project / "conf" / "base" / "prefect.yml").write_text(conf)
    open_session(project)
    assert chain_automations(api_url, project) == []


def test_after_datasets_naming_what_the_catalog_lacks_is_a_config_error(api_url, make_project):
    project = add_flow_pipelines(
        make_project(
            "pipelines: all\ndeployments:\n  data_science: {after_datasets: [doubled, no_such_data, params:start]}\n"
        )
    )
    for command in (("prefect", "register", "--dry-run"), ("run",)):  # nothing is registered either way
        result = kedro(project, *command)
        assert result.returncode != 0
        message = " ".join(result.stderr.split())
        assert "deployments.data_science.after_datasets" in message and "prefect.yml" in message, message
        assert "['no_such_data', 'params:start'] are not in the catalog" in message
    assert project_deployments(api_url, project) == []


def after_datasets_config(deployments: dict):
    from kedro_prefect_hooks.config import parse_config

    return parse_config({"pipelines": "all", "deployments": deployments}, [Path("conf/base/prefect.yml")])


def test_a_dataset_the_catalog_cannot_build_is_a_config_error_not_a_traceback(tmp_path):
    """The reviewer's case: `s3://` without s3fs installed raised DatasetError out of the hook."""
    from kedro.io import DataCatalog

    from kedro_prefect_hooks.config import ConfigError
    from kedro_prefect_hooks.project import KedroProject
    from kedro_prefect_hooks.registration.plan import after_dataset_keys

    catalog = DataCatalog.from_config({"lake": {"type": "json.JSONDataset", "filepath": "s3://b/x.json"}})
    project = KedroProject("proj", "proj", tmp_path, None, "local")
    config = after_datasets_config({"b": {"after_datasets": ["lake"]}})
    with pytest.raises(ConfigError, match=r"deployments.b.after_datasets.*'lake' cannot be built"):
        after_dataset_keys(config, project, ["a", "b"], lambda: catalog)


def test_after_datasets_that_would_start_a_pipeline_forever_is_a_config_error(tmp_path):
    """A pipeline writing a dataset it waits for (or through another) would start itself again
    and again: Prefect's loop guard covers flow-run events only."""
    from kedro.io import DataCatalog

    from kedro_prefect_hooks.config import ConfigError
    from kedro_prefect_hooks.project import KedroProject
    from kedro_prefect_hooks.registration.plan import after_dataset_keys

    entries = {name: {"type": "json.JSONDataset", "filepath": f"data/{name}.json"} for name in ("x", "y")}
    catalog = DataCatalog.from_config(entries)
    project = KedroProject("proj", "proj", tmp_path, None, "local")
    outputs = {"a": ["x"], "b": ["y"]}
    fine = after_datasets_config({"b": {"after_datasets": ["x"]}})
    assert after_dataset_keys(fine, project, ["a", "b"], lambda: catalog, outputs) == {
        "x": f"file://{tmp_path}/data/x.json"
    }
    for loop in ({"a": {"after_datasets": ["x"]}}, {"b": {"after_datasets": ["x"]}, "a": {"after": ["b"]}}):
        with pytest.raises(ConfigError, match="`after_datasets` makes a loop"):
            after_dataset_keys(after_datasets_config(loop), project, ["a", "b"], lambda: catalog, outputs)
