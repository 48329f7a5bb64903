"""Running a unit of nodes in another process (a Dask worker): Kedro rebuilt there once per run.

Only names cross the process boundary: the unit's node names and what the session
was built from (project path, env, runtime params, save version). The worker
imports the project itself, so nodes whose functions live in the project package
unpickle nowhere else; it builds the run's catalog with the run's save version, so
every process writes one version, and the session's hooks, so node and dataset
hooks fire there. Pipeline hooks fire once, in the flow's process.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from kedro_prefect_hooks.compat import run_catalog, session_hook_manager
from kedro_prefect_hooks.run import mlflow_link
from kedro_prefect_hooks.run.assets import record_payloads
from kedro_prefect_hooks.run.units import run_node


class RemoteRun:
    """What a worker process needs to rebuild the run's Kedro session: plain, picklable values."""

    def __init__(
        self,
        project_path: str,
        env: str | None,
        runtime_params: dict[str, Any] | None,
        pipeline: str,
        save_version: str,
        load_versions: dict[str, str] | None,
    ):
        self.project_path = project_path
        self.env = env
        self.runtime_params = runtime_params
        self.pipeline = pipeline
        self.save_version = save_version
        self.load_versions = load_versions
        self.mlflow_run: mlflow_link.SharedRun | None = None  # set by the runner once the pipeline hooks ran

    def key(self) -> tuple:
        return (self.project_path, self.env, repr(self.runtime_params), self.save_version)


class RemoteUnit:
    """A unit by name: its nodes are looked up in the worker's own pipeline registry."""

    def __init__(
        self,
        name: str,
        node_names: list[str],
        memory_datasets: list[str],
        asset_payloads: dict[str, dict[str, Any]] | None = None,
    ):
        self.name = name
        self.node_names = node_names
        self.memory_datasets = memory_datasets  # made and used inside the unit: freed after it
        self.asset_payloads = asset_payloads or {}  # asset key -> its materialization event's payload


class KedroNodeError(RuntimeError):
    """A node failed in a worker process: its name and error, as plain strings that pickle back."""

    def __init__(self, node: str, error: str):
        super().__init__(node, error)
        self.node = node
        self.error = error

    def __str__(self) -> str:
        return f"Kedro node '{self.node}' failed: {self.error}"


@dataclass
class NodeTiming:
    name: str
    seconds: float
    where: str | None = None  # a child run's pool and name; None: a Dask worker


@dataclass
class _WorkerKedro:
    catalog: Any
    hook_manager: Any
    nodes: dict[str, Any] = field(default_factory=dict)


_BUILT: dict[tuple, _WorkerKedro] = {}  # one per run and process; older runs are dropped


def worker_kedro(run: RemoteRun) -> _WorkerKedro:
    """This process's Kedro for `run`, built on first use."""
    if (built := _BUILT.get(run.key())) is not None:
        return built
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    metadata = bootstrap_project(run.project_path)  # puts the project's src/ on sys.path
    _send_logs_to_prefect(["kedro", metadata.package_name, "kedro_prefect_hooks"])
    session = KedroSession.create(
        project_path=run.project_path, env=run.env, runtime_params=run.runtime_params, save_on_close=False
    )
    context = session.load_context()
    catalog = run_catalog(context, run.save_version, run.load_versions)
    nodes = {node.name: node for node in pipelines[run.pipeline].nodes}
    _BUILT.clear()
    _BUILT[run.key()] = built = _WorkerKedro(catalog, session_hook_manager(session), nodes)
    return built


def _send_logs_to_prefect(logger_names: list[str]) -> None:
    """For the life of this worker process: Kedro's and the project's log lines go to the task's run.

    After bootstrap_project, whose logging config would reset handlers attached before.
    """
    from prefect.logging.handlers import APILogHandler

    for name in logger_names:
        named = logging.getLogger(name)
        if not any(isinstance(handler, APILogHandler) for handler in named.handlers):
            named.addHandler(APILogHandler())
        if named.level == logging.NOTSET:
            named.setLevel(logging.INFO)


@task(name="kedro-node", task_run_name="{unit.name}", cache_policy=NO_CACHE, persist_result=False)
def run_kedro_nodes_remotely(unit: RemoteUnit, run: RemoteRun) -> list[NodeTiming]:
    """The body of every task under Dask: Kedro's own node runner, node by node, in this process.

    Runs in the project directory, as `kedro run` and the flow do: nodes may use relative paths.
    """
    os.chdir(run.project_path)
    record_payloads(unit.asset_payloads)
    kedro = worker_kedro(run)
    timings = []
    with mlflow_link.active_in_this_thread(run.mlflow_run):
        for name in unit.node_names:
            node = kedro.nodes[name]
            for dataset in (
                *node.inputs,
                *node.outputs,
            ):  # what AbstractRunner.run does in the flow's process
                kedro.catalog.get(dataset, fallback_to_runtime_pattern=True)
            start = time.perf_counter()
            try:
                run_node(node, kedro.catalog, kedro.hook_manager, run.save_version)
            except Exception as exc:
                raise KedroNodeError(name, f"{type(exc).__name__}: {exc}") from exc
            timings.append(NodeTiming(name, time.perf_counter() - start))
    for dataset in unit.memory_datasets:
        kedro.catalog.release(dataset)
    return timings
