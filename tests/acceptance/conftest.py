"""Acceptance fixtures: project templates built once per session, and what plain `kedro run` makes.

Each test clones a template under its own package and project name (its own flow,
deployments and data), so tests share no mutable state and run in any order or in
parallel (pytest-xdist). The templates and the plain `kedro run` outputs are read only.
"""

from __future__ import annotations

import shutil

import pytest

from .projects import (
    ARMED,
    SHAPES,
    SPACEFLIGHTS,
    TEMPLATE_PACKAGE,
    Shape,
    clone_project,
    outputs,
    write_shape,
)
from conftest import kedro


@pytest.fixture(scope="session")
def acceptance_templates(project_template, tmp_path_factory) -> dict:
    """shape name -> a `kedro new` project with the shape's code, conf and raw data."""
    templates = {}
    for shape in (SHAPES, SPACEFLIGHTS):
        template = tmp_path_factory.mktemp(f"template-{shape.name}") / "template-project"
        shutil.copytree(project_template, template)
        write_shape(template, shape, TEMPLATE_PACKAGE)
        templates[shape.name] = template
    return templates


class PlainRun:
    def __init__(self, project, output: str):
        self.project = project
        self.outputs = outputs(project)
        self.output = output


@pytest.fixture(scope="session")
def plain_kedro_run(acceptance_templates, tmp_path_factory):
    """`plain_kedro_run(shape, *kedro_run_args, seeded=False, armed=False)`: what `kedro run --pipeline
    <shape's>` makes in a fresh copy (the hook disabled), once per session and arguments.

    `seeded`: the copy first gets the files the shape's --from-nodes run reads, from a full run;
    `armed`: the flaky node fails (Kedro's own resume message is in the output)."""
    done: dict[tuple, PlainRun] = {}

    def run(shape: Shape, *args: str, seeded: bool = False, armed: bool = False) -> PlainRun:
        key = (shape.name, args, seeded, armed)
        if key in done:
            return done[key]
        project = clone_project(
            acceptance_templates[shape.name], tmp_path_factory.mktemp("plain"), "enabled: false\n"
        )
        if seeded:
            seed(project, run(shape).project, shape)
        if armed:
            (project / ARMED).write_text("1")
        ran = kedro(project, "run", "--pipeline", shape.pipeline, *args, env={"COLUMNS": "1000"}, timeout=300)
        assert (ran.returncode != 0) == armed, ran.stdout + ran.stderr
        done[key] = PlainRun(project, ran.stdout + ran.stderr)
        return done[key]

    return run


def seed(project, source, shape: Shape) -> None:
    """The files the shape's --from-nodes run reads, copied from another copy's full run."""
    for path in shape.seeded:
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / path, project / path)
