"""`kedro prefect init|register|list|run` through click's runner, on real projects and a real server."""

from __future__ import annotations

import pytest

from kedro_prefect_hooks.trigger.start import parse_params

from conftest import invoke, project_deployments
from kedro_projects import copy_project
from prefect_runs import call_api


@pytest.fixture
def bare_project(project_template, tmp_path):
    """A project without prefect.yml and without the hook in settings.py."""
    return copy_project(project_template, tmp_path, prefect_yml=None, hook=False)


def test_init_writes_a_template_that_validates_and_registers(api_url, bare_project):
    result = invoke(bare_project, "init")
    assert result.exit_code == 0, result.output
    written = bare_project / "conf" / "base" / "prefect.yml"
    assert written.exists() and "HOOKS = (PrefectHook(),)" in result.output
    from kedro_prefect_hooks.config import parse_config

    assert "config for Proj " in written.read_text()
    parse_config(__import__("yaml").safe_load(written.read_text()))  # validates as written
    again = invoke(bare_project, "init")
    assert again.exit_code != 0 and "--force" in again.output
    assert invoke(bare_project, "init", "--force").exit_code == 0

    registered = invoke(bare_project, "register")
    assert registered.exit_code == 0, registered.output
    assert {d["name"] for d in project_deployments(api_url, bare_project)} == {
        "__default__",
        "data_processing",
        "data_science",
    }


def test_register_dry_run_writes_nothing_and_shows_the_plan(api_url, make_project):
    project = make_project("pipelines: [data_processing, data_science]\n")
    plan = invoke(project, "register", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert plan.output.count("create ") == 2 and "nothing written" in plan.output
    assert project_deployments(api_url, project) == []

    assert invoke(project, "register").exit_code == 0
    assert invoke(project, "register", "--dry-run").output.count("unchanged") == 2
    (project / "conf" / "base" / "prefect.yml").write_text(
        "pipelines: [data_processing, data_science]\ndefaults: {tags: [nightly]}\n"
    )
    changed = invoke(project, "register", "--dry-run", "--pipeline", "data_science")
    assert "update    " in changed.output and "(tags differ)" in changed.output
    assert "data_processing" not in changed.output

    # one pipeline's options change: only that deployment is written
    (project / "conf" / "base" / "prefect.yml").write_text(
        "pipelines: [data_processing, data_science]\ndeployments: {data_science: {tags: [nightly]}}\n"
    )
    plan = invoke(project, "register", "--dry-run").output
    assert plan.count("unchanged ") == 1 and plan.count("update    ") == 1, plan
    before = {d["name"]: d["updated"] for d in project_deployments(api_url, project)}
    written = invoke(project, "register").output
    assert "written   " in written and written.count("written   ") == 1, written
    after = {d["name"]: d["updated"] for d in project_deployments(api_url, project)}
    assert (
        after["data_processing"] == before["data_processing"]
        and after["data_science"] != before["data_science"]
    )


def test_list_and_run_with_wait(api_url, make_project, process_worker):
    project = make_project("pipelines: [data_processing]\n")
    assert "not registered" in invoke(project, "list").output
    assert invoke(project, "register").exit_code == 0
    listed = invoke(project, "list")
    assert "data_processing: current, pool kedro, schedule none, last run never run" in listed.output

    ran = invoke(
        project,
        "run",
        "data_processing",
        "--params",
        "start=5",
        "--job-variable",
        "env.KPH_TEST=42",
        "--wait",
        "--timeout",
        "120",
    )
    assert ran.exit_code == 0, ran.output
    run_id = ran.output.split("/runs/flow-run/")[1].split()[0]
    assert call_api("GET", f"{api_url}/flow_runs/{run_id}").json()["job_variables"] == {
        "env": {"KPH_TEST": "42"}
    }
    assert ran.output.count("COMPLETED: 1/1 nodes completed") == 1, ran.output  # the final line, once
    assert "0/0" not in ran.output and "/1 nodes completed" in ran.output.splitlines()[1]
    assert "last run COMPLETED" in invoke(project, "list").output


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "nope"), "not selected in prefect.yml"),
        (("register", "--pipeline", "nope"), "not selected in prefect.yml"),
    ],
)
def test_unknown_pipeline_is_a_clear_error(api_url, make_project, args, message):
    result = invoke(make_project("pipelines: [data_processing]\n"), *args)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_missing_config_and_unreachable_api_are_clear_errors(make_project, monkeypatch):
    from kedro_prefect_hooks.local.server import free_port

    missing = invoke(make_project(None), "list")
    assert missing.exit_code == 1 and "kedro prefect init" in missing.output
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    down = invoke(make_project("pipelines: all\n"), "register")
    assert down.exit_code == 1 and "cannot connect" in down.output


def test_params_use_kedro_syntax():
    import click

    assert parse_params("a=1, b.c=x,b.d=true,e=") == {"a": 1, "b": {"c": "x", "d": True}, "e": ""}
    with pytest.raises(click.BadParameter, match="not key=value"):
        parse_params("a=1,oops")


def test_the_init_template_explains_every_key_without_a_file_pip_users_lack():
    """A pip install has no docs/ folder: the template itself names every key, with an example."""
    import re
    from importlib.resources import files

    from kedro_prefect_hooks.config import PrefectConfig
    from kedro_prefect_hooks.config.deployment import DeploymentOptions
    from kedro_prefect_hooks.config.run import RunOptions

    template = files("kedro_prefect_hooks").joinpath("templates/prefect.yml").read_text()
    assert not re.search(r"(^|\s)docs/", template, re.M), "points at a file of the repository"
    lines = template.format(project_name="X").splitlines()
    for model, indent in ((PrefectConfig, ""), (DeploymentOptions, "  "), (RunOptions, "    ")):
        for key in model.model_fields:
            pattern = re.compile(rf"^(# ?)?{indent}(# ?)?{key}:")
            found = [i for i, line in enumerate(lines) if pattern.match(line)]
            assert found, f"the template does not show `{key}:`"
            line = lines[found[0]]
            # explained on the line itself, or by a comment line just above it
            assert "  # " in line or lines[found[0] - 1].lstrip().startswith("#"), line


@pytest.mark.parametrize("env", ["../../outside", "a/b", "..", ".", ""])
def test_init_refuses_an_env_that_is_not_a_plain_folder_name(bare_project, env):
    """Issue 19, 12: `kedro prefect init --env ../../outside` wrote outside conf/."""
    result = invoke(bare_project, "init", "--env", env)
    assert result.exit_code != 0 and "plain folder name" in result.output, result.output
    assert not (bare_project.parent / "outside").exists()
    assert not list(bare_project.parent.rglob("prefect.yml"))


def test_run_with_an_env_triggers_that_envs_deployment_or_says_whose_it_is(api_url, make_project):
    """Issue 19, 13: `kedro prefect run p -e staging` triggered the deployment env local registered
    (flow run `env: null`, tag `kedro-env:local`), silently."""
    project = make_project("pipelines: [data_processing]\n")
    (project / "conf" / "staging").mkdir()
    assert invoke(project, "register").exit_code == 0  # Kedro's default run env: local
    [local] = project_deployments(api_url, project)
    refused = invoke(project, "run", "data_processing", "-e", "staging")
    assert refused.exit_code == 1, refused.output
    assert "registered by env local" in refused.output and "{pipeline}-{env}" in refused.output
    assert (
        call_api(
            "POST", f"{api_url}/flow_runs/count", json={"deployments": {"id": {"any_": [local["id"]]}}}
        ).json()
        == 0
    )

    (project / "conf" / "staging" / "prefect.yml").write_text("names: {deployment: '{pipeline}-{env}'}\n")
    assert invoke(project, "register", "-e", "staging").exit_code == 0
    ran = invoke(project, "run", "data_processing", "-e", "staging")
    assert ran.exit_code == 0, ran.output
    run_id = ran.output.split("/runs/flow-run/")[1].split()[0]
    flow_run = call_api("GET", f"{api_url}/flow_runs/{run_id}").json()
    assert flow_run["parameters"]["env"] == "staging" and "kedro-env:staging" in flow_run["tags"]
    staging = call_api("GET", f"{api_url}/deployments/{flow_run['deployment_id']}").json()
    assert staging["name"] == "data_processing-staging"
