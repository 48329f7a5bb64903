"""Running a unit of nodes in a child flow run on another work pool (`run.node_tags.<tag>.work_pool`).

The parent's task starts the tag's helper deployment with `run_deployment` (Prefect shows
the child as a subflow run of the parent) and waits for it. Only names cross: the child
rebuilds the session from the parent's env, runtime params, save version and load versions,
as a Dask worker does (remote.py), so versioned datasets line up and node and dataset hooks
fire there; pipeline hooks fire once, in the parent.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from kedro_prefect_hooks.run.remote import (
    KedroNodeError,
    NodeTiming,
    RemoteRun,
    RemoteUnit,
    run_kedro_nodes_remotely,
)
from kedro_prefect_hooks.run.report import escape_markdown

POLL_SECONDS = 1.0  # run_deployment's default, 5 s, would add up to 5 s to every child run


class ChildRun:
    """The deployment a pool tag's child runs come from, and the pool, as the parent sees them."""

    def __init__(self, deployment: str, pool: str):
        self.deployment = deployment  # "<flow>/<deployment>"
        self.pool = pool


@task(name="kedro-child-run", task_run_name="{unit.name}", cache_policy=NO_CACHE, persist_result=False)
def run_nodes_in_child_run(unit: RemoteUnit, run: RemoteRun, child: ChildRun) -> list[NodeTiming]:
    """The parent's task for a unit on another pool: start the child run, wait, read what each node took."""
    from prefect import get_run_logger
    from prefect.deployments import run_deployment

    get_run_logger().info(
        "Nodes %s run in a child run of %s on work pool '%s'; it starts when a worker of that pool "
        "takes it (e.g. `prefect worker start --pool %s`)",
        ", ".join(unit.node_names),
        child.deployment,
        child.pool,
        child.pool,
    )
    flow_run: Any = run_deployment(  # the sync call returns the FlowRun
        name=child.deployment,
        parameters={
            "pipeline": run.pipeline,
            "env": run.env,
            "params": run.runtime_params,
            "node_names": unit.node_names,
            "save_version": run.save_version,
            "load_versions": run.load_versions,
        },
        timeout=None,  # the task's own timeout_seconds, if any, bounds the wait
        poll_interval=POLL_SECONDS,
        as_subflow=True,
    )
    tasks = _task_runs(flow_run.id)
    where = f"pool {escape_markdown(child.pool)}, child run [{escape_markdown(flow_run.name)}]({_ui_link(flow_run.id)})"
    if flow_run.state is None or not flow_run.state.is_completed():
        failed = [t for t in tasks if t.state is not None and t.state.is_failed()]
        state = flow_run.state.name if flow_run.state else "without a state"
        message = (flow_run.state.message if flow_run.state else None) or ""
        node = failed[0].name if failed else unit.node_names[0]
        raise KedroNodeError(node, f"the child run ended {state} ({where}): {message}".rstrip(": "))
    seconds = {t.name: t.total_run_time.total_seconds() for t in tasks}
    return [NodeTiming(name, seconds.get(name, 0.0), where) for name in unit.node_names]


def _ui_link(flow_run_id: Any) -> str:
    """The child run's page: the UI's URL, or the API's without `/api` (a local server serves both)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    base = PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api")
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"


def _task_runs(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def run_child_nodes(run: RemoteRun, node_names: list[str]) -> None:
    """Inside the child run: each node one task, in the parent's order; the first failure ends the run."""
    for name in node_names:
        body = run_kedro_nodes_remotely.with_options(name=name, task_run_name=name)
        state = body(RemoteUnit(name, [name], []), run, return_state=True)
        if not state.is_completed():
            state.result()  # raises the node's error: the child run fails with it
