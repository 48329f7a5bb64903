"""The flow called in-process against the real server: task runner choices, timeouts, grouping errors."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path

from prefect_runs import timestamp


def spans(tasks: dict) -> list[tuple[datetime, datetime]]:
    return sorted((timestamp(t["start_time"]), timestamp(t["end_time"])) for t in tasks.values())


def test_sequential_runs_one_node_at_a_time(run_flow):
    _, state, tasks = run_flow("defaults: {run: {task_runner: sequential}}\n", "sleepy")
    assert state.is_completed(), state.message
    assert len(tasks) == 4
    ordered = spans(tasks)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(ordered))


def test_max_workers_bounds_the_threads(run_flow):
    _, state, tasks = run_flow("defaults: {run: {task_runner: threads, max_workers: 2}}\n", "sleepy")
    assert state.is_completed(), state.message
    ordered = spans(tasks)
    # With two threads, the third node starts only after one of the first two ended.
    assert ordered[2][0] >= min(ordered[0][1], ordered[1][1])
    assert ordered[1][0] < ordered[0][1]  # but two did run together


def test_timeout_fails_a_slow_node(run_flow):
    _, state, tasks = run_flow("defaults: {run: {timeout_seconds: 0.5}}\n", "sleepy", params={"nap": 3})
    assert state.is_failed()
    assert "Task run exceeded timeout of 0.5 second(s)" in state.message
    assert state.name == "Failed"  # the node timed out, not the flow
    timed_out = [t for t in tasks.values() if t["state"]["name"] == "TimedOut"]
    assert timed_out and all(t["state"]["type"] == "FAILED" for t in timed_out)


def test_per_pipeline_run_options_override_the_defaults(run_flow):
    prefect_yml = """
        defaults: {run: {task_runner: sequential}}
        deployments:
          sleepy: {run: {task_runner: threads}}
    """
    _, state, tasks = run_flow(prefect_yml, "sleepy")
    assert state.is_completed(), state.message
    ordered = spans(tasks)
    assert ordered[-1][0] < ordered[0][1]  # threads: all four overlapped


def test_runtime_params_reach_the_nodes(run_flow):
    _, state, tasks = run_flow("pipelines: all\n", "data_processing", params={"start": 5})
    assert state.is_completed(), state.message
    assert set(tasks) == {"double"}
    (version,) = Path("data/02_intermediate/doubled.json").iterdir()  # the run chdir'd into the project
    assert json.loads((version / "doubled.json").read_text()) == 10


def test_an_unknown_env_fails_naming_the_available_ones(run_flow):
    _, state, tasks = run_flow("pipelines: all\n", "__default__", env="prod")
    assert state.is_failed()
    assert "Kedro env 'prod' does not exist" in state.message and "'local'" in state.message
    assert tasks == {}


def test_a_run_without_env_reads_its_run_options_from_kedro_env(run_flow, monkeypatch):
    """A worker with KEDRO_ENV set: its session runs in that env, so the run options must come from it too."""
    monkeypatch.setenv("KEDRO_ENV", "staging")
    staging = {"staging/prefect.yml": "defaults: {run: {timeout_seconds: 0.5}}\n"}
    _, state, _ = run_flow("pipelines: all\n", "sleepy", conf=staging, params={"nap": 3})
    assert state.is_failed()
    assert "Task run exceeded timeout of 0.5 second(s)" in state.message
