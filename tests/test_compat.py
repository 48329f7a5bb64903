"""The private and version-dependent APIs in compat.py keep working, or fail safe, when they change."""

from __future__ import annotations

import pytest

from kedro_prefect_hooks.compat import _run_options_pipelines, all_pipelines_visible, run_session

from conftest import kedro, project_deployments


class Registry:
    """Kedro's pipeline registry as far as compat.py uses it (set_requested, keys)."""

    def __init__(self, attribute: str = "_requested_pipelines"):
        self.attribute = attribute
        setattr(self, attribute, ["a"])

    def set_requested(self, names):
        setattr(self, self.attribute, names)

    def keys(self):
        requested = getattr(self, self.attribute)
        return ["a"] if requested else ["a", "b", "c"]


def test_the_run_filter_is_lifted_for_the_read_and_restored():
    registry = Registry()
    with all_pipelines_visible(registry):
        assert registry.keys() == ["a", "b", "c"]
    assert registry._requested_pipelines == ["a"]


def test_if_kedro_renames_the_filter_every_pipeline_is_still_seen():
    """The fallback is slower (the run loads every pipeline) but never registers fewer."""
    registry = Registry(attribute="_renamed_filter")
    with all_pipelines_visible(registry):
        assert registry.keys() == ["a", "b", "c"]
    assert registry.keys() == ["a", "b", "c"]


def test_before_kedro_1_5_the_requested_pipelines_are_the_run_commands_options():
    """Kedro 1.0-1.4 keep no `_requested_pipelines`: `kedro run --pipeline x` says it in click's context."""
    import click

    @click.command()
    @click.option("--pipeline")
    @click.option("--pipelines", default="")
    def run(pipeline, pipelines):
        click.echo(",".join(_run_options_pipelines()))

    from click.testing import CliRunner

    assert CliRunner().invoke(run, ["--pipeline", "extra"]).output.strip() == "extra"
    assert CliRunner().invoke(run, ["--pipelines", "a, b"]).output.strip() == "a,b"
    assert CliRunner().invoke(run, []).output.strip() == ""
    assert _run_options_pipelines() == []  # outside a command


@pytest.mark.parametrize("keyword", ["pipeline_names", "pipeline_name"])
def test_session_run_uses_the_keyword_this_kedro_has(keyword):
    """Kedro 1.2 added `pipeline_names`; 1.0 and 1.1 take `pipeline_name`."""
    calls = []

    class Session:
        if keyword == "pipeline_names":

            def run(self, pipeline_names=None, runner=None, tags=None):
                calls.append(("names", pipeline_names, tags))
        else:

            def run(self, pipeline_name=None, runner=None, tags=None):
                calls.append(("name", pipeline_name, tags))

    run_session(Session(), "ds", runner=None, tags=["t"])
    assert calls == [("names", ["ds"], ["t"])] if keyword == "pipeline_names" else [("name", "ds", ["t"])]


@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_a_prefect_that_fails_to_import_is_reported_like_an_api_error(
    api_url, make_project, tmp_path, on_error
):
    """Seen with an incompatible prefect: its import error must not break `kedro run` under `warn`."""
    broken = tmp_path / "broken-site"
    (broken / "prefect").mkdir(parents=True)
    (broken / "prefect" / "__init__.py").write_text("raise ImportError('simulated incompatible prefect')\n")
    project = make_project(f"pipelines: all\non_error: {on_error}\n")
    # a Prefect home of its own: the facts registration takes from prefect (flow schema, pool
    # template) are kept there once computed, and then a registration imports no prefect at all
    home = {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    result = kedro(project, "run", env={"PYTHONPATH": str(broken), "COLUMNS": "1000", **home})
    output = result.stdout + result.stderr
    assert "prefect could not be imported (ImportError: simulated incompatible prefect)" in output
    assert result.returncode == (0 if on_error == "warn" else 1), output
    assert project_deployments(api_url, project) == []
