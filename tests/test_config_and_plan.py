"""Pure logic: config validation, the plan, fingerprints, API settings. No server."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest

from kedro_prefect_hooks.config import FLOW_PARAMETERS, ConfigError, parse_config
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.connection import resolve_api
from kedro_prefect_hooks.registration.plan import (
    FINGERPRINT_LABEL,
    OWNER_LABEL,
    desired_deployments,
    sanitise,
    set_fingerprint,
)

PROJECT = KedroProject(
    name="Spaceflights", package="spaceflights", path=Path("/srv/sf"), env=None, run_env="local"
)


def plan(raw, pipelines=("a", "b")):
    return desired_deployments(parse_config(raw), PROJECT, list(pipelines))


def test_flow_parameters_match_the_flow_signature():
    from kedro_prefect_hooks.flow import kedro_pipeline

    names = list(inspect.signature(kedro_pipeline.fn).parameters)
    assert names == ["pipeline", "env", *FLOW_PARAMETERS]
    hints = typing.get_type_hints(kedro_pipeline.fn)
    assert {name: hints[name] for name in FLOW_PARAMETERS} == FLOW_PARAMETERS  # the types the config checks


def test_defaults_are_what_the_docs_say():
    config = parse_config({})
    assert config.pipelines == "all" and config.on_error == "warn" and config.timeout == 2.0
    assert config.work_pool.name == "kedro" and config.prune is False and config.enabled is True


def test_errors_name_every_bad_key_and_the_file(tmp_path):
    file = tmp_path / "prefect.yml"
    file.write_text("pipelines: []\nbogus: 1\n")
    with pytest.raises(ConfigError) as error:
        parse_config({"pipelines": [], "bogus": 1}, [file])
    message = str(error.value)
    shown = f"{file.parent.name}/prefect.yml"  # relative to the working directory when under it
    assert f"{shown}: key `pipelines`" in message and "empty" in message
    assert f"{shown}: key `bogus`: unknown key" in message


@pytest.mark.parametrize(
    "schedule",
    [{}, {"cron": "* * * * *", "interval": 60}, {"cron": "0 0 * * *", "anchor_date": "2024-01-01"}],
)
def test_a_schedule_is_exactly_one_kind(schedule):
    with pytest.raises(ConfigError, match="schedule"):
        parse_config({"defaults": {"schedule": schedule}})


def test_schedules_in_api_form():
    cron, interval, rrule = (
        parse_config({"defaults": {"schedule": s}}).defaults.schedule.to_api()
        for s in (
            {"cron": "0 6 * * 1-5", "timezone": "Europe/Paris"},
            {"interval": 90, "anchor_date": "2024-01-01T00:00:00"},
            {"rrule": "FREQ=DAILY;BYHOUR=6"},
        )
    )
    assert cron == {"cron": "0 6 * * 1-5", "timezone": "Europe/Paris"}
    assert interval == {"interval": 90, "timezone": "UTC", "anchor_date": "2024-01-01T00:00:00"}
    assert rrule == {"rrule": "FREQ=DAILY;BYHOUR=6", "timezone": "UTC"}


def test_overrides_add_tags_merge_parameters_and_replace_the_rest():
    a, b = plan(
        {
            "defaults": {
                "tags": ["x"],
                "parameters": {"params": {"k": 1}},
                "paused": True,
                "description": "d",
            },
            "deployments": {"a": {"tags": ["y"], "parameters": {"tags": ["fast"]}, "paused": False}},
        }
    )
    assert a.body["tags"][-2:] == ["x", "y"] and b.body["tags"][-1] == "x"
    assert a.body["parameters"] == {"pipeline": "a", "env": None, "params": {"k": 1}, "tags": ["fast"]}
    assert (a.body["paused"], b.body["paused"]) == (False, True)
    assert a.body["description"] == b.body["description"] == "d"


def test_selected_pipelines():
    assert parse_config({"pipelines": "all"}).selected_pipelines(["b", "a"]) == ["a", "b"]
    assert parse_config({"pipelines": ["b"]}).selected_pipelines(["a", "b"]) == ["b"]
    with pytest.raises(ConfigError, match=r"\['c'\].*available: \['a', 'b'\]"):
        parse_config({"pipelines": ["a", "c"]}).selected_pipelines(["a", "b"])


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a/b", "a-b"), ("x%y&z", "x-y-z"), ("<in>", "-in-"), ("Spaceflights Demo", "Spaceflights Demo")],
)
def test_sanitise(raw, clean):
    assert sanitise(raw) == clean


def test_each_deployment_has_its_own_fingerprint_and_the_set_one_covers_them():
    base = plan({})
    assert [d.fingerprint for d in plan({})] == [d.fingerprint for d in base]
    for change in (
        {"defaults": {"tags": ["t"]}},
        {"defaults": {"schedule": {"cron": "0 0 * * *"}}},
        {"work_pool": {"job_variables": {"env": {"A": "1"}}}},
        {"work_pool": {"name": "other"}},
        {"names": {"flow": "{project}-{env}"}},
        {"source": {"directory": "/opt/sf"}},
    ):
        assert all(x.fingerprint != y.fingerprint for x, y in zip(plan(change), base, strict=True)), change
    a, b = plan({"deployments": {"b": {"paused": True}}})
    assert a.fingerprint == base[0].fingerprint and b.fingerprint != base[1].fingerprint  # only b changed
    assert set_fingerprint(plan({}, pipelines=["a"])) != set_fingerprint(base)
    assert a.body["labels"][FINGERPRINT_LABEL] == a.body["version"] == a.fingerprint


def test_the_owner_names_project_env_and_code_location():
    local, directory = plan({}), plan({"source": {"directory": "/opt/sf"}})
    owner = local[0].body["labels"][OWNER_LABEL]
    assert owner.startswith("project spaceflights, env local, local ") and owner.endswith(":/srv/sf")
    assert directory[0].body["labels"][OWNER_LABEL] == "project spaceflights, env local, directory /opt/sf"


def test_a_non_local_source_is_the_same_from_every_checkout():
    """Two clones at different paths compute identical deployments: the second writes nothing."""
    elsewhere = KedroProject(
        name="Spaceflights", package="spaceflights", path=Path("/home/bob/sf"), env=None, run_env="local"
    )
    git = {
        "source": {"git": {"url": "https://github.com/acme/sf.git", "branch": "main", "subdirectory": "proj"}}
    }
    here = desired_deployments(parse_config(git), PROJECT, ["a"])
    there = desired_deployments(parse_config(git), elsewhere, ["a"])
    assert here[0].body == there[0].body and here[0].fingerprint == there[0].fingerprint
    assert here[0].body["pull_steps"] == [
        {
            "prefect.deployments.steps.git_clone": {
                "id": "clone-project",
                "repository": "https://github.com/acme/sf.git",
                "branch": "main",
            }
        },
        {
            "prefect.deployments.steps.set_working_directory": {
                "directory": "{{ clone-project.directory }}/proj"
            }
        },
    ]


@pytest.mark.parametrize(
    ("git", "credentials"),
    [
        (
            {"credentials": "github-credentials/acme"},
            {"credentials": "{{ prefect.blocks.github-credentials.acme }}"},
        ),
        ({"access_token_secret": "acme-token"}, {"access_token": "{{ prefect.blocks.secret.acme-token }}"}),
    ],
)
def test_git_credentials_are_block_references(git, credentials):
    [deployment] = desired_deployments(
        parse_config({"source": {"git": {"url": "https://github.com/acme/sf.git", **git}}}), PROJECT, ["a"]
    )
    clone = deployment.body["pull_steps"][0]["prefect.deployments.steps.git_clone"]
    assert {k: v for k, v in clone.items() if k in ("credentials", "access_token")} == credentials


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"git": {"url": "https://user:ghp_secret@github.com/acme/sf.git"}}, "Secret block"),
        (
            {"git": {"url": "https://github.com/acme/sf.git", "credentials": "just-a-token"}},
            "block reference",
        ),
        (
            {"git": {"url": "https://github.com/acme/sf.git", "subdirectory": "../up"}},
            "inside the repository",
        ),
        ({"directory": "relative/path"}, "absolute path"),
        ({"directory": "/opt/sf", "git": {"url": "https://github.com/acme/sf.git"}}, "exactly one"),
        ("remote", "source"),
    ],
)
def test_bad_sources_are_config_errors(source, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"source": source})


def test_a_pipeline_can_have_its_own_pool_or_job_variables():
    config = parse_config(
        {
            "work_pool": {"name": "k8s", "job_variables": {"image": "acme:1", "env": {"A": "1"}}},
            "deployments": {
                "train": {"work_pool": {"name": "gpu", "job_variables": {"image": "acme-gpu:1"}}},
                "report": {"work_pool": {"job_variables": {"memory": "16Gi", "env": {"B": "2"}}}},
            },
        }
    )
    assert config.pool_for("train").model_dump() == {"name": "gpu", "job_variables": {"image": "acme-gpu:1"}}
    assert config.pool_for("report").model_dump() == {
        "name": "k8s",
        "job_variables": {"image": "acme:1", "memory": "16Gi", "env": {"A": "1", "B": "2"}},
    }
    assert config.pool_for("other").name == "k8s"
    with pytest.raises(ConfigError, match=r"defaults\.work_pool"):
        parse_config({"defaults": {"work_pool": {"name": "x"}}})


def test_api_url_precedence_and_auth(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    (tmp_path / "profiles.toml").write_text(
        'active = "p"\n[profiles.p]\nPREFECT_API_URL = "https://profile/api"\nPREFECT_API_KEY = "k"\n'
    )
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    from_profile = resolve_api(None)
    assert from_profile.url == "https://profile/api" and from_profile.headers == {"Authorization": "Bearer k"}
    assert "k" not in repr(from_profile).replace("kedro", "")
    monkeypatch.setenv("PREFECT_API_URL", "https://env/api/")
    assert resolve_api(None).url == "https://env/api"
    assert resolve_api("https://config/api").source == "api_url in prefect.yml"
    (tmp_path / "profiles.toml").unlink()
    monkeypatch.delenv("PREFECT_API_URL")
    assert resolve_api(None) is None


def test_credentials_in_the_url_move_to_a_header(monkeypatch):
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    with_credentials = resolve_api("https://u:p@host:1/api")
    assert with_credentials.url == "https://host:1/api"
    assert with_credentials.headers == {"Authorization": "Basic dTpw"}  # base64("u:p")
    assert resolve_api("http://host/api").url == "http://host/api"
