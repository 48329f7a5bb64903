"""Pure logic: config validation, the plan, fingerprints, API settings. No server."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest

from kedro_prefect_hooks.config import FLOW_PARAMETERS, ConfigError, parse_config
from kedro_prefect_hooks.prefect_api.settings import resolve_api
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.plan import (
    FINGERPRINT_LABEL,
    OWNER_LABEL,
    bookkeeping_variable,
    desired_deployments,
    owner,
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


def test_the_owner_names_project_env_and_who_registers():
    local, directory = plan({}), plan({"source": {"directory": "/opt/sf"}})
    git = plan({"source": {"git": {"url": "https://GitHub.com/acme/sf.git/", "commit": "1" * 40}}})
    owner = local[0].body["labels"][OWNER_LABEL]
    assert owner.startswith("project spaceflights, env local, local ") and owner.endswith(":/srv/sf")
    assert directory[0].body["labels"][OWNER_LABEL] == "project spaceflights, env local, directory source"
    assert git[0].body["labels"][OWNER_LABEL] == (
        "project spaceflights, env local, git repository https://github.com/acme/sf"
    )


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


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/acme/proj.git?private_token=glpat-abc123",
        "https://git.example.com/acme/proj.git?access_token=x",
        "https://oauth2:glpat-abc@git.example.com/acme/proj.git",
        "ssh://git:hunter2@git.example.com/acme/proj.git",
        "https://git.example.com/acme/proj.git#token=abc",
    ],
)
def test_a_credential_anywhere_in_a_git_url_is_refused(url):
    """Seen: a token in the query string was accepted, and stored in the pull step and the owner label."""
    with pytest.raises(ConfigError, match="Secret block") as error:
        parse_config({"source": {"git": {"url": url}}})
    assert "glpat" not in str(error.value) and "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    "git",
    [
        {"access_token_secret": "My Token"},
        {"access_token_secret": "token }} {{ x"},
        {"credentials": "github-credentials/Acme Repo"},
        {"credentials": "github-credentials/acme_repo"},
        {"credentials": "GitHub-Credentials/acme"},
    ],
)
def test_block_names_are_checked_as_prefect_checks_them(git):
    with pytest.raises(ConfigError, match="lowercase letters, digits and dashes"):
        parse_config({"source": {"git": {"url": "https://github.com/acme/sf.git", **git}}})


def test_ssh_git_urls_with_a_user_name_are_fine():
    for url in ("git@github.com:acme/sf.git", "ssh://git@github.com/acme/sf.git"):
        parse_config({"source": {"git": {"url": url}}})


@pytest.mark.parametrize("timezone", ["posixrules", "right/UTC", "posix/Europe/Paris", "localtime"])
def test_a_timezone_the_server_refuses_is_a_config_error(timezone):
    """Seen: these passed the check and became a server 422 at write time."""
    with pytest.raises(ConfigError, match="timezone"):
        parse_config({"defaults": {"schedule": {"cron": "0 6 * * *", "timezone": timezone}}})


def test_a_bad_git_source_is_one_line_not_a_spurious_local_one_too():
    """Seen: pydantic's union error added `key source: Input should be 'local'`."""
    with pytest.raises(ConfigError) as error:
        parse_config({"source": {"git": {"url": "https://github.com/acme/sf.git", "branhc": "main"}}})
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == 1 and "source.git.branhc" in lines[0] and "'local'" not in str(error.value), lines


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"defaults": {"schedule": {"interval": float("nan")}}}, "defaults.schedule.interval"),
        ({"timeout": float("nan")}, "timeout"),
        ({"defaults": {"run": {"retry_delay_seconds": float("inf")}}}, "defaults.run.retry_delay_seconds"),
    ],
)
def test_nan_and_infinity_are_named_as_such(raw, key):
    """Seen: `.nan` intervals were reported as "<= 3153600000"."""
    with pytest.raises(ConfigError, match="finite number") as error:
        parse_config(raw)
    assert f"key `{key}`" in str(error.value) and "3153600000" not in str(error.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"defaults": {"run": {"retries": 1e12}}},
        {"defaults": {"run": {"max_workers": 1e9}}},
        {"defaults": {"run": {"node_tags": {"flaky": {"retries": 10**9}}}}},
        {"defaults": {"run": {"dask": {"n_workers": 10**6}}}},
        {"worker": {"limit": 10**12}},
    ],
)
def test_absurd_counts_are_config_errors(raw):
    with pytest.raises(ConfigError, match="less than or equal"):
        parse_config(raw)


@pytest.mark.parametrize(
    ("package", "env"),
    [("spaceflights", "Prod"), ("spaceflights", "prod"), ("spaceflights", "é tè"), ("sf" * 100, "e" * 200)],
)
def test_the_bookkeeping_variable_has_a_name_prefect_accepts(package, env):
    """Prefect variable names: lowercase letters, digits, underscores and dashes, at most 255."""
    import re

    project = KedroProject(name="X", package=package, path=Path("/srv/x"), env=env, run_env=env)
    name = bookkeeping_variable(project)
    assert re.fullmatch(r"[a-z0-9_-]{1,255}", name), name


def test_envs_differing_only_in_case_keep_apart():
    names = {
        bookkeeping_variable(KedroProject(name="X", package="sf", path=Path("/x"), env=e, run_env=e))
        for e in ("Prod", "prod", "PROD")
    }
    assert len(names) == 3


def test_a_release_keeps_the_owner_and_a_checkout_or_repository_does_not():
    """Owner identity: project, env and who registers (the repository for git, a directory source,
    the checkout for local), never the commit, the branch or the directory's path."""

    def owner_for(source, project=PROJECT):
        return owner(parse_config({"source": source}), project)

    url = "https://github.com/acme/sf.git"
    assert owner_for({"git": {"url": url, "commit": "1" * 40}}) == owner_for(
        {"git": {"url": url, "commit": "2" * 40}}
    )
    assert owner_for({"git": {"url": url, "branch": "a"}}) == owner_for({"git": {"url": url, "branch": "b"}})
    assert owner_for({"directory": "/opt/sf-1.4"}) == owner_for({"directory": "/opt/sf-1.5"})
    assert owner_for({"git": {"url": url}}) != owner_for({"git": {"url": "https://github.com/other/sf.git"}})
    elsewhere = KedroProject(
        name="Spaceflights", package="spaceflights", path=Path("/home/bob/sf"), env=None, run_env="local"
    )
    assert owner_for("local") != owner_for("local", elsewhere)
    assert "1111" not in owner_for({"git": {"url": url, "commit": "1" * 40}})


@pytest.mark.parametrize(
    ("source", "label"),
    [
        (
            {"git": {"url": "https://github.com/acme/sf.git", "commit": "2" * 40}},
            "git https://github.com/acme/sf.git@" + "1" * 40,
        ),
        (
            {"git": {"url": "https://github.com/acme/sf.git", "branch": "b"}},
            "git https://github.com/acme/sf.git@a:proj",
        ),
        ({"directory": "/opt/sf-1.5"}, "directory /opt/sf-1.4"),
        ("local", "local HOST:/srv/sf"),
    ],
)
def test_owner_labels_written_by_0_2_0_are_read_as_the_same_owner(source, label):
    """Upgrading must not turn a user's own deployments into clashes."""
    import socket

    from kedro_prefect_hooks.registration.ownership import is_ours

    old = f"project spaceflights, env local, {label.replace('HOST', socket.gethostname())}"
    deployment = {"labels": {OWNER_LABEL: old}, "tags": []}
    assert is_ours(deployment, owner(parse_config({"source": source}), PROJECT), PROJECT)
    other_env = KedroProject(
        name="Spaceflights", package="spaceflights", path=Path("/srv/sf"), env="prod", run_env="prod"
    )
    assert not is_ours(deployment, owner(parse_config({"source": source}), other_env), other_env)


def test_one_rule_for_the_env_in_force(monkeypatch):
    """Kedro's rule, in one place: the env given, else KEDRO_ENV, else the loader's default run
    env, else base (a flow run with env=None once read another env's run options)."""
    from types import SimpleNamespace

    from kedro_prefect_hooks.config.loader import loader_env
    from kedro_prefect_hooks.project import run_env, session_env

    monkeypatch.delenv("KEDRO_ENV", raising=False)
    new_project = SimpleNamespace(env=None, default_run_env="local", base_env="base")
    assert (session_env(None), run_env(None, new_project), loader_env(new_project)) == (
        None,
        "local",
        "local",
    )
    monkeypatch.setenv("KEDRO_ENV", "staging")
    assert (session_env(None), session_env("prod")) == ("staging", "prod")
    staging = SimpleNamespace(env="staging", default_run_env="local", base_env="base")
    assert (run_env(None, staging), run_env("prod", staging)) == ("staging", "prod")
    assert run_env(None, SimpleNamespace(env=None, default_run_env=None, base_env="base")) == "base"
