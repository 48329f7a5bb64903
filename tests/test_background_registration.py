"""A session whose pipelines changed registers them in the background (issue 23's third row).

Seen: `kedro run --pipeline a` right after editing any node file took 1.4x as long with the
hook on: the stale name cache made the session import every pipeline module (scikit-learn,
plotly) in the foreground, and said nothing about it.
"""

from __future__ import annotations

import pytest
from kedro.framework.project import pipelines as kedro_pipelines

from kedro_prefect_hooks.local.server import free_port

from conftest import background_registration, project_deployments
from conftest import kedro as kedro_command
from kedro_projects import add_pipeline, package_dir

RUNS_IMPORT_ONLY_THEIR_PIPELINES = hasattr(kedro_pipelines, "set_requested")  # Kedro >= 1.5

# Each import of the module appends the command that imported it: who loaded the registry.
ADDED = """
import sys
from pathlib import Path

# outside the project: a file the registry's load writes in it would be one the cache watches
with open(Path(__file__).parents[5] / (Path(__file__).parents[4].name + "-imported-by.txt"), "a") as out:
    out.write(" ".join(sys.argv[1:]) + "\\n")

from kedro.pipeline import Pipeline, node


def triple(x):
    return x * 3


def create_pipeline(**kwargs):
    return Pipeline([node(triple, "params:start", "tripled", name="triple")])
"""


def imported_by_file(project):
    return project.parent / f"{project.name}-imported-by.txt"


class Said:
    """A command's outcome and its output in one line (Kedro logs to stdout through rich)."""

    def __init__(self, result):
        self.returncode = result.returncode
        self.text = " ".join((result.stdout + result.stderr).split())


def kedro(project, *args):
    return Said(kedro_command(project, *args, env={"COLUMNS": "400"}))


def test_a_run_after_an_edit_leaves_the_pipelines_to_a_background_registration(api_url, make_project):
    project = make_project("pipelines: all\ntimeout: 30\n")
    first = kedro(project, "run", "--pipeline", "data_processing")  # the first session registers itself
    assert first.returncode == 0, first.text
    before = project_deployments(api_url, project)
    assert "in the background" not in first.text and len(before) == 3, first.text

    add_pipeline(project, "added", ADDED)
    after_edit = kedro(project, "run", "--pipeline", "data_processing")
    assert after_edit.returncode == 0, after_edit.text
    assert "the pipelines changed since they were last loaded; registering them in the background" in (
        after_edit.text
    ), after_edit.text
    assert ".kedro-prefect/registrar.log" in after_edit.text

    ended = background_registration(project)
    assert ended.state == "passed", ended
    assert any(line.startswith("written") and "added" in line for line in ended.lines), ended.lines
    assert len(project_deployments(api_url, project)) == 4
    imported_by = imported_by_file(project).read_text().splitlines()
    # Kedro < 1.5 loads every pipeline for any run: only the registrar's import is ours to spare
    runs = [] if RUNS_IMPORT_ONLY_THEIR_PIPELINES else ["run --pipeline data_processing"]
    assert imported_by == [*runs, "prefect register"], imported_by

    listed = kedro(project, "prefect", "list")
    assert listed.returncode == 0, listed.text
    assert "background registration: passed at" in listed.text, listed.text

    next_session = kedro(project, "run", "--pipeline", "data_processing")  # says how it went, once
    assert next_session.returncode == 0, next_session.text
    assert "the background registration passed at" in next_session.text, next_session.text
    assert "added" in next_session.text and "in the background (log" not in next_session.text
    quiet = kedro(project, "run", "--pipeline", "data_processing")
    assert "background registration" not in quiet.text, quiet.text
    again = imported_by_file(project).read_text().splitlines()
    assert again.count("prefect register") == 1, again  # no registrar since: the cache is current
    assert again.count("run --pipeline data_processing") == 3 * len(runs), again


def test_a_failed_background_registration_is_said_by_the_next_session_with_its_log(api_url, make_project):
    project = make_project("pipelines: all\ntimeout: 3\n")
    assert kedro(project, "run", "--pipeline", "data_processing").returncode == 0
    down = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    (project / "conf" / "base" / "prefect.yml").write_text(f"pipelines: all\ntimeout: 3\napi_url: {down}\n")
    add_pipeline(project, "added", ADDED)
    assert (
        kedro(project, "run", "--pipeline", "data_processing").returncode == 0
    )  # never the command's failure

    ended = background_registration(project)
    assert ended.state == "failed" and ended.exit_code != 0, ended
    assert down.split("/api")[0] in " ".join(ended.lines), ended.lines
    next_session = kedro(project, "run", "--pipeline", "data_processing")
    assert next_session.returncode == 0, next_session.text
    said = " ".join(next_session.text.split())
    assert "WARNING" in said and "the background registration failed at" in said, said
    assert "registrar.log" in said
    log = (project / ".kedro-prefect" / "registrar.log").read_text()
    assert "--- exit 1" in log and down.split("/api")[0] in log, log


@pytest.mark.parametrize(
    ("prefect_yml", "options"),
    [("on_error: raise\n", []), ("", ["--params", "start=4"])],
    ids=["on_error raise", "runtime params"],
)
def test_a_session_the_registrar_cannot_stand_for_registers_itself(
    api_url, make_project, prefect_yml, options
):
    """on_error: raise asks the session to fail when registration does; runtime params may be
    interpolated in prefect.yml, which `kedro prefect register` would read without them."""
    project = make_project("pipelines: all\ntimeout: 30\n" + prefect_yml)
    assert kedro(project, "run", "--pipeline", "data_processing").returncode == 0
    add_pipeline(project, "added", ADDED)
    after_edit = kedro(project, "run", "--pipeline", "data_processing", *options)
    assert after_edit.returncode == 0, after_edit.text
    assert "in the background" not in after_edit.text
    assert len(project_deployments(api_url, project)) == 4
    assert not (project / ".kedro-prefect" / "registrar.json").exists()


def test_a_registry_that_fails_to_load_is_not_loaded_again_until_the_code_changes(api_url, make_project):
    """Seen by hand: with a module that does not import, every session started another background
    import of every pipeline (the cache is never refreshed), and the error named only the module."""
    project = make_project("pipelines: all\ntimeout: 30\n")
    assert kedro(project, "run", "--pipeline", "data_processing").returncode == 0
    add_pipeline(project, "added", "import no_such_module\n")
    assert kedro(project, "run", "--pipeline", "data_processing").returncode == 0
    failed = background_registration(project)
    # find_pipelines(raise_errors=True) fails the load (Kedro >= 1.x's template); without, it warns
    assert failed.warns and "added" in " ".join(failed.lines), failed
    if failed.state == "failed":
        assert "loading the pipelines failed" in failed.lines[0] and "no_such_module" in failed.lines[0]

    for _ in range(2):  # said as a warning each time; nothing started again
        session = kedro(project, "run", "--pipeline", "data_processing")
        assert session.returncode == 0, session.text
        assert "WARNING kedro-prefect-hooks:" in session.text and "added" in session.text, session.text
        assert session.text.count("background registration") == 1, session.text
        assert "registering them in the background" not in session.text
        assert background_registration(project).started == failed.started
    if failed.state == "failed":
        listed = kedro(project, "prefect", "list")  # the command says it in one line, no traceback
        assert listed.returncode != 0 and "No module named 'no_such_module'" in listed.text, listed.text
        assert "Traceback" not in listed.text

    (package_dir(project) / "pipelines" / "added" / "pipeline.py").write_text(ADDED)  # fixed
    fixed = kedro(project, "run", "--pipeline", "data_processing")
    assert "registering them in the background" in fixed.text, fixed.text
    assert background_registration(project).state == "passed"
    assert len(project_deployments(api_url, project)) == 4
