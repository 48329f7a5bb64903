"""`run.node_tags.<tag>.concurrency`: Prefect tag concurrency limits kept at registration, enforced in runs."""

from __future__ import annotations

import pytest

from kedro_prefect_hooks.config import ConfigError, parse_config
from kedro_prefect_hooks.registration.tag_limits import wanted_tag_limits

from conftest import invoke, open_session, project_deployments
from kedro_projects import add_pipeline, package_dir
from prefect_runs import call_api, task_runs, timestamp


def limit_on_server(api_url: str, tag: str) -> int | None:
    found = call_api("GET", f"{api_url}/concurrency_limits/tag/{tag}", check=False)
    return None if found.status_code == 404 else found.json()["concurrency_limit"]


def write_config(project, text: str) -> None:
    (project / "conf" / "base" / "prefect.yml").write_text(text)


def unique_tag(project) -> str:
    """Tag limits are server-wide: each test gets its own tag."""
    return f"db-{package_dir(project).name}"


def test_two_values_for_one_tag_is_a_config_error_naming_the_key():
    config = parse_config(
        {
            "pipelines": ["a", "b"],
            "defaults": {"run": {"node_tags": {"db": {"concurrency": 2}}}},
            "deployments": {"b": {"run": {"node_tags": {"db": {"concurrency": 3}}}}},
        }
    )
    with pytest.raises(ConfigError) as error:
        wanted_tag_limits(config, ["a", "b"])
    message = str(error.value)
    assert "run.node_tags.db.concurrency" in message
    assert "2 for a" in message and "3 for b" in message
    assert "defaults.run.node_tags.db.concurrency" in message  # the fix
    assert wanted_tag_limits(config, ["a"]) == {"db": 2}  # b not selected: no conflict


def test_a_limit_is_created_changed_and_removed_with_its_key(api_url, make_project, hook_log):
    project = make_project()
    tag = unique_tag(project)
    write_config(
        project, f"pipelines: all\ndefaults: {{run: {{node_tags: {{{tag}: {{concurrency: 2}}}}}}}}\n"
    )
    assert f"create    tag concurrency limit '{tag}': 2" in invoke(project, "register", "--dry-run").output
    assert limit_on_server(api_url, tag) is None  # a dry run writes nothing

    open_session(project)
    assert limit_on_server(api_url, tag) == 2
    assert any(f"tag concurrency limit '{tag}': 2" in m for m in hook_log.messages(level=20))

    write_config(
        project, f"pipelines: all\ndefaults: {{run: {{node_tags: {{{tag}: {{concurrency: 1}}}}}}}}\n"
    )
    assert f"update    tag concurrency limit '{tag}': 1 (was 2)" in invoke(project, "register").output
    assert limit_on_server(api_url, tag) == 1

    write_config(project, "pipelines: all\n")
    open_session(project)
    assert limit_on_server(api_url, tag) is None
    assert len(project_deployments(api_url, project)) == 3  # the deployments stayed


def test_a_limit_someone_else_set_is_left_alone_with_a_warning(api_url, make_project, hook_log):
    project = make_project()
    tag = unique_tag(project)
    call_api("POST", f"{api_url}/concurrency_limits/", json={"tag": tag, "concurrency_limit": 5})
    write_config(
        project, f"pipelines: all\ndefaults: {{run: {{node_tags: {{{tag}: {{concurrency: 2}}}}}}}}\n"
    )
    open_session(project)
    assert limit_on_server(api_url, tag) == 5
    warnings = [m for m in hook_log.messages() if f"'{tag}'" in m]
    assert warnings and "is 5 on the server and was not set by this project and env" in warnings[0]
    assert len(project_deployments(api_url, project)) == 3  # the rest registered

    write_config(project, "pipelines: all\n")  # the key goes: a limit it never set is not removed
    open_session(project)
    assert limit_on_server(api_url, tag) == 5


TAGGED_NAPS = """
    import time

    from kedro.pipeline import Pipeline, node


    def nap(seconds):
        time.sleep(seconds)
        return seconds


    def create_pipeline(**kwargs):
        return Pipeline([
            node(nap, "params:nap", "slept_a", name="tagged_a", tags=["{tag}"]),
            node(nap, "params:nap", "slept_b", name="tagged_b", tags=["{tag}"]),
            node(nap, "params:long_nap", "slept_c", name="untagged_c"),
        ])
"""


@pytest.mark.parametrize("runner", ["threads", "dask"])
def test_nodes_of_a_limited_tag_never_run_at_once(api_url, make_project, monkeypatch, runner):
    if runner == "dask":
        pytest.importorskip("prefect_dask")
    from prefect.settings import PREFECT_API_URL, temporary_settings

    project = make_project()
    tag = unique_tag(project)
    add_pipeline(project, "naps", TAGGED_NAPS.replace("{tag}", tag), parameters="nap: 1.5\nlong_nap: 4\n")
    write_config(
        project,
        f"pipelines: [naps]\ndefaults: {{run: {{task_runner: {runner}, dask: {{n_workers: 3}}, "
        f"node_tags: {{{tag}: {{concurrency: 1}}}}}}}}\n",
    )
    open_session(project)  # registers the limit
    assert limit_on_server(api_url, tag) == 1
    monkeypatch.chdir(project)
    from kedro_prefect_hooks.flow import kedro_pipeline

    with temporary_settings({PREFECT_API_URL: api_url}):
        state = kedro_pipeline(pipeline="naps", return_state=True)
    assert state.is_completed(), state.message
    tasks = task_runs(api_url, str(state.state_details.flow_run_id))
    span = {name: (timestamp(t["start_time"]), timestamp(t["end_time"])) for name, t in tasks.items()}
    (first, second) = sorted([span["tagged_a"], span["tagged_b"]])
    assert first[1] <= second[0]  # the tagged two one after the other
    # the untagged one (4 s) ran beside a tagged one: the runner did run nodes at once
    assert any(
        start < span["untagged_c"][1] and span["untagged_c"][0] < end for start, end in (first, second)
    )
    assert all(tag in tasks[name]["tags"] for name in ("tagged_a", "tagged_b"))
