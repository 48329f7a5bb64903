"""Every way a run is started, on projects shaped like real ones, against plain `kedro run`.

Run paths: a first run followed with `--wait`, the UI's Retry of a failed run (on a real
process worker), the resume command `--wait` prints for a failed run, `--from-nodes` and
`--to-outputs`; each under the sequential, threads and Dask task runners (not every
combination: each path runs where its logic differs). What is compared: every file under
data/ byte for byte (CSV, Parquet, JSON, pickle), a versioned dataset at its newest
version, with what `kedro run` with the same options wrote in another copy of the project.
"""

from __future__ import annotations

import re
import shlex

import pytest

from .projects import ARMED, SHAPES, SPACEFLIGHTS, Shape, clone_project, outputs
from conftest import invoke, project_deployments
from prefect_runs import (
    call_api,
    retry_like_the_ui,
    run_artifacts,
    trigger,
    wait_for_attempt,
    wait_for_run,
)

RUNNERS = {
    "sequential": "",
    "threads": "defaults: {run: {task_runner: threads, max_workers: 4}}\n",
    "dask": "defaults: {run: {task_runner: dask}}\n",
}
TIMEOUT = "600"
COMPLETED = re.compile(r"^COMPLETED: (\d+)/(\d+) (nodes|tasks) completed$")

pytestmark = pytest.mark.timeout(900)


def cases(*pairs: tuple[Shape, str]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "shape, runner", pairs, ids=[f"{shape.name}-{runner}" for shape, runner in pairs]
    )


@pytest.fixture
def registered(request, acceptance_templates, api_url, process_worker, tmp_path):
    """A fresh copy of the case's project, its pipeline registered for the session's worker."""

    def make(shape: Shape, runner: str):
        pipelines = f"pipelines: [{shape.pipeline}]\n"
        project = clone_project(acceptance_templates[shape.name], tmp_path, pipelines + RUNNERS[runner])
        registered = invoke(project, "register")
        assert registered.exit_code == 0, registered.output
        return project

    return make


def grouping(runner: str) -> str:
    return "memory" if runner == "dask" else "none"


def final_count(output: str) -> tuple[int, int, str]:
    last = output.strip().splitlines()[-1]
    match = COMPLETED.match(last)
    assert match, output
    return int(match.group(1)), int(match.group(2)), match.group(3)


@cases(*((SHAPES, runner) for runner in RUNNERS), (SPACEFLIGHTS, "dask"))
def test_a_first_run_followed_with_wait(shape, runner, registered, plain_kedro_run):
    project = registered(shape, runner)
    ran = invoke(project, "run", shape.pipeline, "--wait", "--timeout", TIMEOUT)
    assert ran.exit_code == 0, ran.output
    total = shape.tasks[grouping(runner)]
    assert final_count(ran.output) == (total, total, "tasks" if runner == "dask" else "nodes")
    assert outputs(project) == plain_kedro_run(shape).outputs


@cases(*((SHAPES, runner) for runner in RUNNERS), (SPACEFLIGHTS, "sequential"), (SPACEFLIGHTS, "dask"))
def test_the_uis_retry_of_a_failed_run_skips_what_completed(
    shape, runner, registered, plain_kedro_run, api_url
):
    project = registered(shape, runner)
    (project / ARMED).write_text("1")
    [deployment] = project_deployments(api_url, project)
    first = wait_for_run(api_url, trigger(api_url, deployment["id"]), timeout=600)
    assert first["state"]["type"] == "FAILED", first["state"]["message"]
    assert "fails on its first attempt" in first["state"]["message"]

    retry_like_the_ui(api_url, first["id"])
    second = wait_for_attempt(api_url, first["id"], attempt=2, timeout=600)
    assert second["state"]["type"] == "COMPLETED", second["state"]["message"]
    runs = call_api(
        "POST", f"{api_url}/task_runs/filter", json={"flow_runs": {"id": {"any_": [first["id"]]}}}
    ).json()
    again = {run["name"] for run in runs if run["flow_run_run_count"] == 2}
    assert again and not again & set(shape.done_before_failure), again
    report = max(
        (a for a in run_artifacts(api_url, first["id"]) if (a["key"] or "").startswith("kedro-")),
        key=lambda artifact: artifact["created"],
    )["data"]
    for name in shape.done_before_failure:
        assert f"| {name.replace('_', chr(92) + '_')} | skipped: completed in an earlier attempt" in report
    assert outputs(project) == plain_kedro_run(shape).outputs


@cases(*((SHAPES, runner) for runner in RUNNERS), (SPACEFLIGHTS, "sequential"))
def test_the_printed_resume_command_completes_the_pipeline(shape, runner, registered, plain_kedro_run):
    project = registered(shape, runner)
    (project / ARMED).write_text("1")
    failed = invoke(project, "run", shape.pipeline, "--wait", "--timeout", TIMEOUT)
    assert failed.exit_code == 1, failed.output
    [command] = [
        line.removeprefix("Resume with: ")
        for line in failed.output.splitlines()
        if line.startswith("Resume with: ")
    ]
    words = shlex.split(command)
    assert words[:4] == ["kedro", "prefect", "run", shape.pipeline] and "--wait" in words, command
    start = set(words[words.index("--from-nodes") + 1].split(","))
    assert f"--from-nodes {','.join(sorted(start))}" in failed.output.splitlines()[-1]  # the run's own hint
    if runner == "sequential":  # the same nodes completed as under `kedro run`: Kedro's own suggestion
        kedros = re.search(r'--from-nodes "([^"]+)"', plain_kedro_run(shape, armed=True).output)
        assert kedros and set(kedros.group(1).split(",")) == start

    resumed = invoke(project, *words[2:])
    assert resumed.exit_code == 0, resumed.output
    done, total, _ = final_count(resumed.output)
    assert done == total
    assert outputs(project) == plain_kedro_run(shape).outputs


@cases((SHAPES, "sequential"), (SHAPES, "dask"), (SPACEFLIGHTS, "threads"))
def test_from_nodes(shape, runner, registered, plain_kedro_run):
    project = registered(shape, runner)
    full = plain_kedro_run(shape).project
    for path in shape.seeded:
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_bytes((full / path).read_bytes())
    start = ",".join(shape.from_nodes)
    ran = invoke(project, "run", shape.pipeline, "--from-nodes", start, "--wait", "--timeout", TIMEOUT)
    assert ran.exit_code == 0, ran.output
    done, total, _ = final_count(ran.output)
    assert done == total
    expected = plain_kedro_run(shape, "--from-nodes", start, seeded=True).outputs
    assert set(expected) > set(shape.seeded) and outputs(project) == expected


@cases((SHAPES, "threads"), (SHAPES, "dask"), (SPACEFLIGHTS, "sequential"))
def test_to_outputs(shape, runner, registered, plain_kedro_run):
    project = registered(shape, runner)
    end = ",".join(shape.to_outputs)
    ran = invoke(project, "run", shape.pipeline, "--to-outputs", end, "--wait", "--timeout", TIMEOUT)
    assert ran.exit_code == 0, ran.output
    done, total, _ = final_count(ran.output)
    assert done == total
    expected = plain_kedro_run(shape, "--to-outputs", end).outputs
    assert set(expected) < set(plain_kedro_run(shape).outputs) and outputs(project) == expected
