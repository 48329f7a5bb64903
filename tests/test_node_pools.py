"""`run.node_tags.<tag>.work_pool`: tagged nodes run in a child flow run on their own pool, with real
process workers on two pools; in-memory hand-offs across the boundary are refused before any node runs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from pathlib import Path

import pytest

from conftest import kedro, open_session, project_deployments, start_process_worker, stop_process
from kedro_projects import add_pipeline, package_dir
from prefect_runs import (
    call_api,
    filter_runs,
    retry_like_the_ui,
    task_runs,
    trigger,
    wait_for_attempt,
    wait_for_run,
)

GPU_CHAIN = """
    import os
    from pathlib import Path

    from kedro.pipeline import Pipeline, node


    def where():
        return {"marker": os.environ.get("KPH_MARKER"), "pid": os.getpid()}


    def prep(start):
        return start + 1, where()


    def heavy(value):
        failed_once = Path("data/heavy_failed_once")
        if not failed_once.exists():
            failed_once.touch()
            raise RuntimeError("the GPU was busy (fails once)")
        return value * 10, where()


    def post(value):
        return value + 5, where()


    def create_pipeline(**kwargs):
        return Pipeline([
            node(prep, "params:start", ["prepped", "prep_where"], name="prep"),
            node(heavy, "prepped", ["trained", "heavy_where"], name="heavy", tags=["gpu"]),
            node(post, "trained", ["scored", "post_where"], name="post"),
        ])
"""
CATALOG = "".join(
    f"{name}:\n  type: json.JSONDataset\n  filepath: data/{name}.json\n"
    + ("  versioned: true\n" if name == "trained" else "")  # written by the child, read by the parent
    for name in ("prepped", "trained", "scored", "prep_where", "heavy_where", "post_where")
)
IN_MEMORY = """
    from kedro.pipeline import Pipeline, node


    def create_pipeline(**kwargs):
        return Pipeline([
            node(lambda x: x + 1, "params:start", "handed_over", name="make"),
            node(lambda x: x * 2, "handed_over", "doubled_in_memory", name="use", tags=["gpu"]),
        ])
"""


NODE_HOOK = """

from kedro.framework.hooks import hook_impl


class NodeWitness:
    \"\"\"Records where each node's before_node_run hook fired.\"\"\"

    @hook_impl
    def before_node_run(self, node):
        import json
        import os

        with open("data/node_hooks.jsonl", "a") as out:
            seen = {"node": node.name, "pid": os.getpid(), "marker": os.environ.get("KPH_MARKER")}
            out.write(json.dumps(seen) + "\\n")


HOOKS = (*HOOKS, NodeWitness())
"""


def read(project, name):
    """A dataset's data; of a versioned one, the latest version's."""
    path = project / "data" / f"{name}.json"
    if path.is_dir():
        path = sorted(path.iterdir())[-1] / f"{name}.json"
    return json.loads(path.read_text())


def stop_children(pid: int) -> None:
    """SIGTERM to each process whose parent is `pid` (Linux /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), signal.SIGTERM)


def gpu_project(make_project, runner: str):
    """(project, main pool, gpu pool): gpu_chain registered, `heavy` (tagged gpu) on the gpu pool."""
    project = make_project(None)
    package = package_dir(project).name
    main, gpu = f"main-{package}", f"gpu-{package}"
    add_pipeline(project, "gpu_chain", GPU_CHAIN, catalog=CATALOG)
    with open(package_dir(project) / "settings.py", "a") as settings:
        settings.write(NODE_HOOK)  # the project's own node hook, beside PrefectHook
    (project / "conf" / "base" / "prefect.yml").write_text(
        f"""
pipelines: [gpu_chain]
work_pool: {{name: {main}, job_variables: {{env: {{KPH_MARKER: main}}}}}}
defaults:
  run:
    task_runner: {runner}
    node_tags:
      gpu:
        work_pool: {{name: {gpu}, job_variables: {{env: {{KPH_MARKER: gpu}}}}}}
"""
    )
    open_session(project)
    return project, main, gpu


def test_wait_says_when_no_worker_serves_the_child_runs_pool(api_url, make_project, tmp_path):
    project, main, gpu = gpu_project(make_project, "sequential")
    (project / "data" / "heavy_failed_once").touch()  # no failure here
    worker = start_process_worker(api_url, main, tmp_path / "main.log")  # none for the gpu pool
    try:
        # 60 s: under load, the parent's cold start and first node took longer than 25 s
        waited = kedro(project, "prefect", "run", "gpu_chain", "--wait", "--timeout", "60", timeout=180)
    finally:
        stop_children(worker.pid)  # the parent run, which would wait for its child run all session
        stop_process(worker)
    assert waited.returncode != 0  # still running when --timeout ended
    assert f"No worker is online for work pool '{gpu}'" in waited.stdout, waited.stdout
    assert f"`prefect worker start --pool '{gpu}'`" in waited.stdout
    assert "still RUNNING: 1/3 nodes completed" in waited.stdout + waited.stderr


@pytest.mark.timeout(600)  # six flow runs, three cold starts on each pool: its own waits add up to 600 s
@pytest.mark.parametrize("runner", ["sequential", "threads", "dask"])
def test_a_tagged_node_runs_in_a_child_run_on_its_pool_and_a_retry_skips_what_completed(
    api_url, make_project, tmp_path, runner
):
    if runner == "dask":
        pytest.importorskip("prefect_dask")
    project, main, gpu = gpu_project(make_project, runner)
    deployments = {d["name"]: d for d in project_deployments(api_url, project)}
    assert set(deployments) == {"gpu_chain", "gpu_chain--gpu"}  # the helper is registered beside it
    assert deployments["gpu_chain--gpu"]["work_pool_name"] == gpu
    assert deployments["gpu_chain--gpu"]["schedules"] == []

    workers = [start_process_worker(api_url, pool, tmp_path / f"{pool}.log") for pool in (main, gpu)]
    try:
        run_id = trigger(api_url, deployments["gpu_chain"]["id"])
        first = wait_for_run(api_url, run_id)
        assert first["state"]["type"] == "FAILED"
        assert "Kedro node 'heavy' failed" in first["state"]["message"]
        assert "the GPU was busy" in first["state"]["message"]
        retry_like_the_ui(api_url, run_id)
        second = wait_for_attempt(api_url, run_id, 2)
        waited = kedro(project, "prefect", "run", "gpu_chain", "--wait", timeout=240)
    finally:
        for worker in workers:
            stop_process(worker)
    assert second["state"]["type"] == "COMPLETED", second["state"]["message"]
    # `--wait` counts the child run's node with the others
    assert waited.returncode == 0, waited.stdout + waited.stderr
    label = "tasks" if runner == "dask" else "nodes"  # dask groups by memory: 3 tasks of 1 node
    assert f"COMPLETED: 3/3 {label} completed" in waited.stdout, waited.stdout
    assert f"4/3 {label}" not in waited.stdout  # the child run's placeholder task run is not counted

    prep, heavy, post = read(project, "prep_where"), read(project, "heavy_where"), read(project, "post_where")
    assert heavy["marker"] == "gpu" and prep["marker"] == "main" and post["marker"] == "main"
    assert heavy["pid"] not in (prep["pid"], post["pid"])
    # the project's node hook fired for the heavy node in the child run's process, on the gpu pool
    hooked = [json.loads(line) for line in (project / "data" / "node_hooks.jsonl").read_text().splitlines()]
    assert {"node": "heavy", "pid": heavy["pid"], "marker": "gpu"} in hooked, hooked
    assert {"node": "post", "pid": post["pid"], "marker": "main"} in hooked, hooked
    # the child runs: subflow runs of the parent's task, on the gpu pool
    children = filter_runs(
        api_url,
        {"deployments": {"id": {"any_": [deployments["gpu_chain--gpu"]["id"]]}}, "sort": "START_TIME_ASC"},
    )
    assert [c["state"]["type"] for c in children] == ["FAILED", "COMPLETED", "COMPLETED"]
    for child in children:
        assert child["work_pool_name"] == gpu
    for child in children[:2]:  # the third is the `--wait` run's
        parent_task = call_api("GET", f"{api_url}/task_runs/{child['parent_task_run_id']}").json()
        assert parent_task["flow_run_id"] == run_id
    assert set(task_runs(api_url, children[1]["id"])) == {"heavy"}  # the child ran exactly its nodes
    # the retry skipped prep, which completed in the first attempt
    report = call_api(
        "POST", f"{api_url}/artifacts/filter", json={"artifacts": {"key": {"any_": ["kedro-gpu-chain"]}}}
    ).json()
    latest = max((a for a in report if a["flow_run_id"] == run_id), key=lambda a: a["created"])
    assert "| prep | skipped" in latest["data"]
    assert "## Nodes run in child runs" in latest["data"]
    assert f"| heavy | pool {gpu.replace('_', chr(92) + '_')}, child run [" in latest["data"]
    assert f"/runs/flow-run/{children[1]['id']})" in latest["data"]  # a link to the child run's page
    # the child saved the versioned dataset under the parent run's save version
    (save_version,) = re.findall(r"- save version: (\S+)", latest["data"])
    assert save_version in [
        p.name for p in (project / "data" / "trained.json").iterdir()
    ]  # and the --wait run's

    values = [read(project, name) for name in ("prepped", "trained", "scored")]
    result = kedro(project, "run", "--pipeline", "gpu_chain")  # plain Kedro, same outputs
    assert result.returncode == 0, result.stderr
    assert [read(project, name) for name in ("prepped", "trained", "scored")] == values == [4, 40, 45]


def test_an_in_memory_hand_off_into_a_pool_is_refused_before_any_node_runs(api_url, run_flow):
    conf = "defaults: {run: {node_tags: {gpu: {work_pool: {name: gpu-pool}}}}}\n"
    _, state, tasks = run_flow(
        conf, "in_memory_gpu", setup=lambda p: add_pipeline(p, "in_memory_gpu", IN_MEMORY)
    )
    assert state.is_failed()
    assert "'handed_over' (node make -> node use)" in state.message
    assert "Declare them in the catalog" in state.message and "No node ran" in state.message
    assert tasks == {}
