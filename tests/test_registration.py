"""A Kedro session registers the selected pipelines with a real Prefect server."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import uuid

import pytest
import yaml

from kedro_prefect_hooks.config import ConfigError
from kedro_prefect_hooks.registration.plan import FLOW_ENTRYPOINT
from kedro_prefect_hooks.registration.prefect_import import facts_path

from conftest import background_registration, kedro, open_session, project_deployments
from prefect_runs import call_api


def test_session_registers_selected_pipelines(api_url, make_project):
    project = make_project(
        """
        pipelines: [__default__, data_science]
        work_pool:
          name: kedro-test-pool
        """,
        name="Demo Proj",
    )
    open_session(project)

    deployments = project_deployments(api_url, project)
    assert [(d["flow_name"], d["name"]) for d in deployments] == [
        ("Demo Proj", "__default__"),
        ("Demo Proj", "data_science"),
    ]
    science = deployments[1]
    assert science["entrypoint"] == FLOW_ENTRYPOINT
    assert science["parameters"] == {"pipeline": "data_science", "env": None}
    assert science["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(project.resolve())}}
    ]
    assert science["work_pool_name"] == "kedro-test-pool"
    assert "kedro-prefect-hooks" in science["tags"]
    # the UI's run form needs the flow's parameters
    assert {"pipeline", "env", "params", "tags"} <= set(science["parameter_openapi_schema"]["properties"])
    pool = call_api("GET", f"{api_url}/work_pools/kedro-test-pool").json()
    assert pool["type"] == "process"


def test_all_registers_every_pipeline(api_url, make_project):
    project = make_project("pipelines: all\n")
    open_session(project)
    names = [d["name"] for d in project_deployments(api_url, project)]
    assert names == ["__default__", "data_processing", "data_science"]


def test_second_session_changes_nothing(api_url, make_project):
    project = make_project("pipelines: all\n")
    open_session(project)
    first = {d["id"]: d["updated"] for d in project_deployments(api_url, project)}
    open_session(project)
    second = {d["id"]: d["updated"] for d in project_deployments(api_url, project)}
    assert first == second and len(first) == 3


SESSION_SCRIPT = """
import sys
from pathlib import Path
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
bootstrap_project(Path.cwd())
KedroSession.create(project_path=Path.cwd()).load_context()
print("prefect imported:", "prefect" in sys.modules)
print("pipeline modules:", sorted(m for m in sys.modules if ".pipelines." in m))
"""


def session_in_a_new_process(project):
    """A Kedro command's session in a fresh interpreter: what it imported."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", SESSION_SCRIPT], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    return "prefect imported: True" in out, out.split("pipeline modules: ")[1].strip()


def test_when_nothing_changed_neither_prefect_nor_pipeline_modules_are_imported(api_url, make_project):
    """The fast path: a server read and a count; pipeline modules can take seconds to import."""
    project = make_project("pipelines: all\n")
    open_session(project)  # registers, and keeps the pipeline names with the files' fingerprint
    prefect_imported, pipeline_modules = session_in_a_new_process(project)
    assert not prefect_imported and pipeline_modules == "[]"


def test_a_new_projects_first_registration_imports_no_prefect_once_any_project_registered(
    api_url, make_project
):
    """The flow's parameter schema and the process pool's job template are the installed prefect's:
    kept in Prefect's home folder, not per project (importing prefect for them took 2.1 s of a
    2.8 s first registration)."""
    open_session(make_project("pipelines: all\n"))  # any registration that wrote keeps them
    pool = f"fresh-{uuid.uuid4().hex[:8]}"
    project = make_project(f"pipelines: all\nwork_pool: {{name: {pool}}}\n")
    prefect_imported, _ = session_in_a_new_process(project)  # its first session: no cache of its own
    assert not prefect_imported
    assert len(project_deployments(api_url, project)) == 3
    created = call_api("GET", f"{api_url}/work_pools/{pool}").json()
    assert created["type"] == "process"
    assert "command" in created["base_job_template"]["variables"]["properties"]
    assert created["base_job_template"] == json.loads(facts_path().read_text())["process_template"]


def package_of(project):
    return next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))


@pytest.mark.parametrize("change", ["add", "remove", "rename"])
def test_a_pipeline_added_removed_or_renamed_is_seen_at_the_next_session(api_url, make_project, change):
    project = make_project("pipelines: all\nprune: true\n")
    session_in_a_new_process(project)
    pipelines = package_of(project) / "pipelines"
    if change == "add":
        shutil.copytree(pipelines / "data_science", pipelines / "reporting")
    elif change == "remove":
        shutil.rmtree(pipelines / "data_science")
    else:
        (pipelines / "data_science").rename(pipelines / "modelling")
    session_in_a_new_process(project)  # a changed package: the session leaves it to the registrar
    assert background_registration(project).state == "passed"
    names = [d["name"] for d in project_deployments(api_url, project)]
    expected = {
        "add": ["__default__", "data_processing", "data_science", "reporting"],
        "remove": ["__default__", "data_processing"],
        "rename": ["__default__", "data_processing", "modelling"],
    }
    assert names == expected[change]


def test_update_sends_full_state(api_url, make_project):
    """Changing the config replaces schedules, tags and job variables; nothing stale stays."""
    project = make_project(
        """
        pipelines: [data_science]
        work_pool:
          job_variables: {env: {FOO: "1"}}
        defaults:
          tags: [nightly]
          schedule: {cron: "0 6 * * *", timezone: Europe/Paris}
          parameters: {params: {start: 5}}
          concurrency_limit: 2
          work_queue: fast
          description: first
        """
    )
    open_session(project)
    [before] = project_deployments(api_url, project)
    assert before["schedules"][0]["schedule"]["cron"] == "0 6 * * *"
    assert before["schedules"][0]["schedule"]["timezone"] == "Europe/Paris"
    assert before["parameters"]["params"] == {"start": 5}
    assert before["job_variables"] == {"env": {"FOO": "1"}}
    assert before["global_concurrency_limit"]["limit"] == 2
    assert before["work_queue_name"] == "fast"
    assert "nightly" in before["tags"]

    (project / "conf" / "base" / "prefect.yml").write_text("pipelines: [data_science]\n")
    open_session(project)
    [after] = project_deployments(api_url, project)
    assert after["id"] == before["id"]
    assert after["schedules"] == []
    assert after["job_variables"] == {}
    assert "nightly" not in after["tags"]
    assert after["parameters"] == {"pipeline": "data_science", "env": None}
    assert after["work_queue_name"] == "default"
    assert after["description"] != "first"
    assert after["version"] != before["version"]


def test_per_pipeline_overrides_and_schedule_kinds(api_url, make_project):
    project = make_project(
        """
        pipelines: all
        timeout: 30  # one session writes all four, however loaded the machine (seen: a missing one)
        defaults:
          tags: [team-a]
          paused: true
        deployments:
          data_processing:
            tags: [etl]
            schedule: {interval: 3600}
            paused: false
          data_science:
            schedule: {rrule: "FREQ=WEEKLY;BYDAY=MO", timezone: UTC}
        """
    )
    open_session(project)
    by_name = {d["name"]: d for d in project_deployments(api_url, project)}
    processing, science, default = (
        by_name["data_processing"],
        by_name["data_science"],
        by_name["__default__"],
    )
    assert {"team-a", "etl"} <= set(processing["tags"])
    assert processing["schedules"][0]["schedule"]["interval"] == 3600
    assert processing["paused"] is False
    assert "FREQ=WEEKLY" in science["schedules"][0]["schedule"]["rrule"]
    assert science["paused"] is True and default["paused"] is True
    assert default["schedules"] == []


def test_name_templates_are_sanitised(api_url, make_project):
    project = make_project(
        """
        pipelines: [data_science]
        names:
          flow: "{project} & co"
          deployment: "{pipeline}/{env}"
        """,
        name="Acme",
    )
    open_session(project)
    [deployment] = project_deployments(api_url, project)
    assert (deployment["flow_name"], deployment["name"]) == ("Acme - co", "data_science-local")


def test_env_is_passed_and_env_config_merges_softly(api_url, make_project):
    project = make_project(
        """
        pipelines: [data_science]
        defaults:
          tags: [base-tag]
          description: from base
        """
    )
    (project / "conf" / "staging").mkdir()
    (project / "conf" / "staging" / "prefect.yml").write_text("defaults:\n  description: from staging\n")
    open_session(project, env="staging")
    [deployment] = project_deployments(api_url, project)
    assert deployment["parameters"]["env"] == "staging"
    assert deployment["description"] == "from staging"
    assert "base-tag" in deployment["tags"]  # soft merge kept the base key
    assert "kedro-env:staging" in deployment["tags"]


def test_prune_deletes_deselected_only_when_asked(api_url, make_project):
    project = make_project("pipelines: all\n")
    open_session(project)
    conf = project / "conf" / "base" / "prefect.yml"
    conf.write_text("pipelines: [data_science]\n")
    open_session(project)
    assert len(project_deployments(api_url, project)) == 3  # prune is off by default

    conf.write_text("pipelines: [data_science]\nprune: true\n")
    open_session(project)
    assert [d["name"] for d in project_deployments(api_url, project)] == ["data_science"]


def test_run_with_one_pipeline_still_registers_all_selected(api_url, make_project):
    """Kedro >= 1.5 loads only the requested pipeline; registration must see them all."""
    project = make_project("pipelines: all\n")
    result = kedro(project, "run", "--pipeline", "data_processing")
    assert result.returncode == 0, result.stderr
    names = [d["name"] for d in project_deployments(api_url, project)]
    assert names == ["__default__", "data_processing", "data_science"]


def test_inside_a_flow_run_nothing_is_registered(api_url, make_project, monkeypatch):
    project = make_project("pipelines: all\n")
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "00000000-0000-0000-0000-000000000000")
    open_session(project)
    assert project_deployments(api_url, project) == []


def test_inside_an_in_process_flow_nothing_is_registered(api_url, make_project):
    from prefect import flow
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )

    project = make_project("pipelines: all\n")

    @flow
    def opens_a_session():
        open_session(project)

    # prefect keeps the settings it saw at import; point it at the test server explicitly
    with temporary_settings({PREFECT_API_URL: api_url, PREFECT_LOGGING_TO_API_ENABLED: False}):
        opens_a_session()
    assert project_deployments(api_url, project) == []


def test_registers_when_an_event_loop_is_running(api_url, make_project):
    """Jupyter runs an event loop in the thread that opens the session."""
    project = make_project("pipelines: [data_science]\n")

    async def in_a_notebook():
        open_session(project)

    asyncio.run(in_a_notebook())
    assert [d["name"] for d in project_deployments(api_url, project)] == ["data_science"]


def test_no_prefect_yml_warns_and_goes_on(api_url, make_project, hook_log):
    project = make_project(prefect_yml=None)
    open_session(project)
    warnings = hook_log.messages()
    assert len(warnings) == 1 and "`kedro prefect init` to write conf/base/prefect.yml" in warnings[0]
    assert project_deployments(api_url, project) == []


def test_disabled_registers_nothing(api_url, make_project, hook_log):
    project = make_project("enabled: false\n")
    open_session(project)
    assert project_deployments(api_url, project) == [] and hook_log.messages() == []


@pytest.mark.parametrize(
    ("prefect_yml", "expected"),
    [
        ("pipelines: all\nwork_pol: {name: x}\n", ["work_pol", "unknown key"]),
        ("pipelines: all\ntimeout: soon\n", ["timeout", "number"]),
        ("pipelines: [data_science, nope]\n", ["pipelines", "nope", "available", "data_processing"]),
        ("pipelines: []\n", ["pipelines", "empty"]),
        ("pipelines: all\ndeployments: {ghost: {paused: true}}\n", ["deployments", "ghost", "available"]),
        ("defaults:\n  schedule: {cron: '61 * * * *'}\n", ["defaults.schedule.cron", "invalid cron"]),
        ("defaults:\n  schedule: {cron: '0 * * * *', timezone: Mars/Olympus}\n", ["timezone", "IANA"]),
        ("defaults:\n  parameters: {pipeline: x}\n", ["defaults.parameters", "unknown flow parameter"]),
        ("names: {deployment: '{project}'}\n", ["names", "both become deployment"]),
        # Refused by the server after some deployments were written, before these checks:
        (
            "deployments: {data_science: {parameters: {params: 5}}}\n",
            ["parameters", "`params` must be a mapping"],
        ),
        ("defaults: {parameters: {tags: fast}}\n", ["parameters", "`tags` must be a list"]),
        ("defaults: {concurrency_limit: 9223372036854775808}\n", ["concurrency_limit", "less than or equal"]),
        ("defaults:\n  schedule: {interval: 1e15}\n", ["defaults.schedule.interval", "less than or equal"]),
        (
            "work_pool: {name: kedro, job_variables: {env: [A=1]}}\n",
            ["work_pool.job_variables", "`env` must map"],
        ),
        ("work_pool: {job_variables: {env: {N_JOBS: 4}}}\n", ["quote numbers"]),
        ("work_pool: {name: team/pool}\n", ["work_pool.name", "contains /"]),
        ("defaults: {work_queue: 'a&b'}\n", ["defaults.work_queue", "contains &"]),
        ("names: {deployment: '{pipeline:d}'}\n", ["names.deployment", "bad template"]),
        ("defaults:\n  schedule: {cron: 'H * * * *'}\n", ["defaults.schedule.cron", "invalid cron"]),
        ("deployments: {data_science: {after: [nope]}}\n", ["deployments.data_science.after", "['nope']"]),
        (
            "deployments: {data_science: {after: [data_processing]}, data_processing: {after: [data_science]}}\n",
            ["makes a loop"],
        ),
    ],
)
def test_invalid_config_fails_and_registers_nothing(api_url, make_project, prefect_yml, expected):
    project = make_project(prefect_yml)
    with pytest.raises(ConfigError) as error:
        open_session(project)
    message = str(error.value)
    assert "prefect.yml" in message
    for fragment in expected:
        assert fragment in message
    assert project_deployments(api_url, project) == []


def test_invalid_config_fails_the_kedro_command_in_a_few_lines(api_url, make_project):
    """Seen: a 60-190 line traceback with the good message on its last line."""
    project = make_project("pipelines: [nope]\n")
    result = kedro(project, "run", env={"COLUMNS": "200"})
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "conf/base/prefect.yml: key `pipelines`" in output and "available:" in output
    assert "Traceback" not in output and "KEDRO_PREFECT_HOOKS_TRACEBACK=1" in output
    assert len(result.stderr.strip().splitlines()) <= 4, result.stderr
    assert project_deployments(api_url, project) == []

    verbose = kedro(project, "run", env={"COLUMNS": "200", "KEDRO_PREFECT_HOOKS_TRACEBACK": "1"})
    assert "Traceback" in verbose.stderr and "after_context_created" in verbose.stderr


@pytest.mark.parametrize("cron", ["@daily", "0 6 * * 1-5", "0 6 * * * 30"])
def test_a_cron_prefect_accepts_is_accepted(api_url, make_project, cron):
    project = make_project(f"pipelines: [data_science]\ndefaults:\n  schedule: {{cron: '{cron}'}}\n")
    open_session(project)
    [deployment] = project_deployments(api_url, project)
    assert deployment["schedules"][0]["schedule"]["cron"] == cron


def test_a_missing_env_folder_is_named_not_reported_as_no_prefect_yml(api_url, make_project, hook_log):
    project = make_project("pipelines: all\n")
    open_session(project, env="nosuchenv")
    [warning] = hook_log.messages()
    assert "conf/nosuchenv" in warning and "no prefect.yml" not in warning
    assert project_deployments(api_url, project) == []


@pytest.mark.parametrize("pool", ["my pool", "café"])
def test_pool_names_with_spaces_and_accents_register(api_url, make_project, pool):
    """Seen: http.client.InvalidURL for `my pool`, UnicodeEncodeError for `café`."""
    project = make_project(f"pipelines: [data_science]\nwork_pool: {{name: '{pool}'}}\n")
    open_session(project)
    [deployment] = project_deployments(api_url, project)
    assert deployment["work_pool_name"] == pool


def test_a_deployment_deleted_on_the_server_comes_back(api_url, make_project):
    project = make_project("pipelines: all\n")
    open_session(project)
    victim = project_deployments(api_url, project)[0]
    call_api("DELETE", f"{api_url}/deployments/{victim['id']}")
    open_session(project)
    assert [d["name"] for d in project_deployments(api_url, project)] == [
        "__default__",
        "data_processing",
        "data_science",
    ]


def test_a_pipeline_whose_module_fails_to_import_is_never_pruned(api_url, make_project):
    """Seen: `prune: true` deleted a deployment because Kedro's find_pipelines skipped its broken module."""
    project = make_project("pipelines: all\nprune: true\n")
    open_session(project)
    assert len(project_deployments(api_url, project)) == 3
    package = next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    registry = package / "pipeline_registry.py"  # as Kedro 1.0's template: a broken module is skipped
    registry.write_text(registry.read_text().replace("find_pipelines(raise_errors=True)", "find_pipelines()"))
    (package / "pipelines" / "data_science" / "pipeline.py").write_text("import no_such_module\n")
    result = kedro(project, "run", "--pipeline", "data_processing", env={"COLUMNS": "1000"})
    assert result.returncode == 0, result.stderr
    ended = background_registration(project)  # the package changed: `kedro prefect register` loads it
    assert ended.state == "passed", ended
    assert [d["name"] for d in project_deployments(api_url, project)] == [
        "__default__",
        "data_processing",
        "data_science",
    ]
    said = "registering only what loaded, nothing pruned; the pipeline registry reported"
    assert said in " ".join(ended.lines), ended.lines
    result = kedro(project, "run", "--pipeline", "data_processing", env={"COLUMNS": "1000"})
    assert said in result.stdout, result.stdout  # the next session repeats it

    conf = project / "conf" / "base" / "prefect.yml"  # named explicitly: a warning, not a failed command
    conf.write_text("pipelines: [data_processing, data_science]\nprune: true\n")
    result = kedro(project, "run", "--pipeline", "data_processing", env={"COLUMNS": "1000"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert background_registration(project).state == "passed"
    assert len(project_deployments(api_url, project)) == 3
    registered = kedro(project, "prefect", "register", "--dry-run")  # the command never prunes it either
    assert registered.returncode == 0, registered.stderr
    assert not [line for line in registered.stdout.splitlines() if line.startswith("prune ")], (
        registered.stdout
    )


def test_an_env_name_with_capitals_registers_and_is_current_next_session(api_url, make_project, hook_log):
    """Seen: `kedro run -e Prod`: `POST /variables/ answered 422 ... lowercase letters` every session,
    and with `on_error: raise` even `kedro catalog describe-datasets -e Prod` failed."""
    project = make_project("pipelines: [data_science]\non_error: raise\n")
    (project / "conf" / "Prod").mkdir()
    open_session(project, env="Prod")
    [deployment] = project_deployments(api_url, project)
    assert "kedro-env:Prod" in deployment["tags"]
    open_session(project, env="Prod")
    assert hook_log.messages() == []
    assert [d["updated"] for d in project_deployments(api_url, project)] == [deployment["updated"]]
    result = kedro(project, "catalog", "describe-datasets", "-e", "Prod")
    assert result.returncode == 0, result.stderr


EXTRA_REGISTRY = """
from pathlib import Path

import yaml
from kedro.pipeline import Pipeline, node

from .pipelines.data_processing import create_pipeline as processing
from .pipelines.data_science import create_pipeline as science
{extra_import}


def register_pipelines():
    pipelines = {{"data_processing": processing(), "data_science": science()}}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    for name in {source}:
        pipelines[name] = Pipeline([node(lambda x: x, "params:start", f"{{name}}_out", name=f"{{name}}_node")])
    return pipelines
"""

REGISTRY_SOURCES = {
    # a YAML file in conf/ that register_pipelines reads
    "conf-yaml": (
        "",
        "yaml.safe_load(Path('conf/base/extra_pipelines.yml').read_text())",
        lambda project, names: (project / "conf" / "base" / "extra_pipelines.yml").write_text(
            yaml.safe_dump(names)
        ),
    ),
    # a module outside the package (src/shared_pipelines.py)
    "module-outside-the-package": (
        "from shared_pipelines import NAMES",
        "NAMES",
        lambda project, names: (project / "src" / "shared_pipelines.py").write_text(f"NAMES = {names!r}\n"),
    ),
}


@pytest.mark.parametrize("source", REGISTRY_SOURCES)
def test_the_pipeline_cache_sees_what_the_registry_read(api_url, make_project, source):
    """Seen: a registry reading conf/ or another module: new pipelines never registered, removed ones never pruned."""
    project = make_project("pipelines: all\nprune: true\n")
    extra_import, names_from, write = REGISTRY_SOURCES[source]
    write(project, ["extra_a"])
    registry = package_of(project) / "pipeline_registry.py"
    registry.write_text(EXTRA_REGISTRY.format(extra_import=extra_import, source=names_from))
    session_in_a_new_process(project)
    assert "extra_a" in [d["name"] for d in project_deployments(api_url, project)]
    write(project, ["extra_b"])
    session_in_a_new_process(project)
    assert background_registration(project).state == "passed"
    names = [d["name"] for d in project_deployments(api_url, project)]
    assert "extra_b" in names and "extra_a" not in names


ENV_REGISTRY = EXTRA_REGISTRY.format(
    extra_import="import os", source="os.environ.get('EXTRA_PIPELINES', '').split()"
)


def test_register_and_a_run_of_an_unknown_name_load_the_registry_itself(api_url, make_project):
    """Seen: with a registry that reads an env var, `register` said unchanged and `run extra` "not selected"."""
    project = make_project("pipelines: all\n")
    (package_of(project) / "pipeline_registry.py").write_text(ENV_REGISTRY)
    session_in_a_new_process(project)  # the cache now holds the names without extras
    with_extra = {"EXTRA_PIPELINES": "extra_env"}
    registered = kedro(project, "prefect", "register", env=with_extra)
    assert registered.returncode == 0, registered.stderr
    assert "written   " in registered.stdout and "extra_env" in registered.stdout
    triggered = kedro(project, "prefect", "run", "extra_env", env=with_extra)
    assert triggered.returncode == 0, triggered.stderr
    assert "Triggered" in triggered.stdout

    listed = kedro(project, "prefect", "list", env={"EXTRA_PIPELINES": "extra_env extra_two"})
    assert "extra_two: not registered" in listed.stdout, listed.stdout


def test_a_session_that_runs_a_pipeline_missing_from_the_cache_refreshes_it(api_url, make_project):
    project = make_project("pipelines: all\n")
    (package_of(project) / "pipeline_registry.py").write_text(ENV_REGISTRY)
    session_in_a_new_process(project)
    result = kedro(project, "run", "--pipeline", "extra_run", env={"EXTRA_PIPELINES": "extra_run"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert background_registration(project).state == "passed"  # it inherits the command's environment
    assert "extra_run" in [d["name"] for d in project_deployments(api_url, project)]


BROKEN_FILES = {
    "syntax error": ("pipelines: [p_a, p_b\n", ["line 2", "YAML"]),
    "a list, not a mapping": ("- p_a\n- p_b\n", ["a list", "mapping", "e.g. `pipelines: [p_a, p_b]`"]),
    "duplicate key": ("pipelines: all\ntimeout: 2\npipelines: [p_a]\n", ["line 3", "`pipelines`", "twice"]),
    "unresolved interpolation": (
        "api_url: ${oc.env:NOPE_VAR}\n",
        ["line 1", "${oc.env:NOPE_VAR}", "PREFECT_API_URL"],
    ),
}


@pytest.mark.parametrize("case", BROKEN_FILES)
@pytest.mark.parametrize("command", [("run",), ("prefect", "register")])
def test_a_broken_prefect_yml_is_a_few_lines_naming_the_file_the_line_and_the_fix(
    api_url, make_project, case, command
):
    """Seen: 62-95 line tracebacks; a list file ended `ListConfig does not support attribute access`."""
    text, fragments = BROKEN_FILES[case]
    project = make_project(text)
    result = kedro(project, *command, env={"COLUMNS": "200"})
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "conf/base/prefect.yml" in output, output
    for fragment in fragments:
        assert fragment in output, output
    assert "Traceback" not in output and len(result.stderr.strip().splitlines()) <= 4, result.stderr
    assert project_deployments(api_url, project) == []


def test_register_with_an_env_that_has_no_folder_names_the_folder(api_url, make_project):
    """Seen: `register -e nope` said there is no prefect.yml, though conf/base has one."""
    result = kedro(
        make_project("pipelines: all\n"), "prefect", "register", "-e", "nope", env={"COLUMNS": "200"}
    )
    assert result.returncode != 0
    assert "conf/nope" in result.stderr and "No prefect.yml" not in result.stderr, result.stderr
