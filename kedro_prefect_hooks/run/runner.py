"""A Kedro runner that runs each unit of nodes (a node, a namespace, an in-memory group) as a Prefect task.

It plugs into `KedroSession.run`, so Kedro builds the catalog (with the run's save
version), fires the pipeline hooks and checks inputs exactly as under `kedro run`.
Nodes run through `kedro.runner.Task` with the session's hook manager, so node and
dataset hooks fire too: in this process (sequential, threads), or in Dask worker
processes that rebuild the session (see remote.py).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from itertools import chain
from typing import Any

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner
from prefect import tags, task
from prefect.cache_policies import NO_CACHE

from kedro_prefect_hooks.compat import suggest_resume
from kedro_prefect_hooks.config import RunOptions
from kedro_prefect_hooks.run import mlflow_link
from kedro_prefect_hooks.run.assets import RunFacts, UnitAssets, materializing, record_payloads, unit_assets
from kedro_prefect_hooks.run.child_runs import ChildRun, run_nodes_in_child_run
from kedro_prefect_hooks.run.remote import KedroNodeError, RemoteRun, RemoteUnit, run_kedro_nodes_remotely
from kedro_prefect_hooks.run.report import RunReport, describe_dataset, sentence
from kedro_prefect_hooks.run.resume import EarlierAttempt, resume_from, resumed_pipeline
from kedro_prefect_hooks.run.scheduling import DaskPool, ThreadPool, finished_future, run_in_pool
from kedro_prefect_hooks.run.units import (
    WorkUnit,
    in_memory,
    memory_handoffs,
    pool_units,
    run_node,
    work_units,
)
from kedro_prefect_hooks.run_options import resume_command

logger = logging.getLogger(__name__)


class NodeFailed(RuntimeError):
    """A node failed; the message names it, its error and how to resume."""


class KedroRun:
    """What every in-process task of one Kedro run shares: the catalog, the hooks, the run id, the report.

    A plain class, not a dataclass: Prefect walks dataclass parameters looking for
    futures, and this one holds the catalog.
    """

    def __init__(
        self,
        catalog: Any,
        hook_manager: Any,
        run_id: str | None,
        report: RunReport,
        mlflow_run: mlflow_link.SharedRun | None = None,
        assets: dict[str, UnitAssets] | None = None,
    ):
        self.catalog = catalog
        self.hook_manager = hook_manager
        self.run_id = run_id
        self.report = report
        self.mlflow_run = mlflow_run  # the flow thread's active MLflow run, if any
        self.assets = assets or {}  # unit name -> what its task materializes


@task(name="kedro-node", task_run_name="{unit.name}", cache_policy=NO_CACHE, persist_result=False)
def run_kedro_nodes(unit: WorkUnit, run: KedroRun) -> None:
    """The body of every in-process task: Kedro's own node runner, node by node.

    Each unit gets its own task object, named after it; tags come from a context.
    """
    if unit.name in run.assets:
        record_payloads(run.assets[unit.name].payloads)
    with mlflow_link.active_in_this_thread(run.mlflow_run):
        for node in unit.nodes:
            run.report.started(node.name)
            start = time.perf_counter()
            try:
                run_node(node, run.catalog, run.hook_manager, run.run_id)
            except BaseException as exc:
                run.report.finished(node.name, time.perf_counter() - start, exc)
                raise
            run.report.finished(node.name, time.perf_counter() - start)


class PrefectRunner(AbstractRunner):
    """Runs work units as Prefect tasks as their parents finish, like Kedro's own runners."""

    def __init__(
        self,
        options: RunOptions,
        report: RunReport,
        remote: RemoteRun | None = None,
        resume: EarlierAttempt | None = None,
        command_options: list[tuple[str, str]] | None = None,
        asset_facts: RunFacts | None = None,
        children: dict[str, ChildRun] | None = None,
    ):
        super().__init__(is_async=False)
        self._asset_facts = asset_facts if options.assets else None  # None: no asset events
        self._assets: dict[str, UnitAssets] = {}  # unit name -> what its task materializes
        self._options = options
        self._report = report
        self._remote = remote  # what Dask workers rebuild the session from
        self._resume = resume
        self._command_options = command_options or []  # `kedro prefect run` options of this run
        self._children = children or {}  # pool tag -> the helper deployment its child runs come from
        self._memory: dict[str, list[str]] = {}  # under dask: unit name -> in-memory datasets it makes

    def _get_executor(self, max_workers: int) -> None:
        return None  # tasks go through Prefect's task runners, not an executor of Kedro's

    def _run(
        self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None
    ) -> None:
        units = self._units(pipeline, catalog)
        self._report.set_nodes([n.name for n in pipeline.nodes])
        if self._resume:
            pipeline, units = self._resumed(pipeline, units, catalog)
        self._report.set_tasks({unit.name: unit.node_names for unit in units})
        self._refuse_memory_handoffs(units, pipeline, catalog)
        if missing := sorted({u.pool_tag for u in units if u.pool_tag and u.pool_tag not in self._children}):
            raise RuntimeError(
                f"nodes tagged {missing} run in child runs of helper deployments, and this run is not a "
                "deployment's run: run it from its deployment (`kedro prefect run`). No node ran."
            )
        if self._options.task_runner == "dask":  # what a Dask worker frees after each unit
            self._memory = {
                unit.name: [d for n in unit.nodes for d in n.outputs if in_memory(d, catalog)]
                for unit in units
            }
        # The pipeline hooks ran: kedro-mlflow's run (if any) is active in this, the flow's, thread.
        mlflow_run = mlflow_link.flow_thread_run()
        mlflow_link.tag_with_flow_run(mlflow_run)
        if self._remote is not None:
            self._remote.mlflow_run = mlflow_run
        self._assets = (
            {unit.name: unit_assets(unit, catalog, self._asset_facts) for unit in units}
            if self._asset_facts is not None
            else {}
        )
        run = KedroRun(catalog, hook_manager, run_id, self._report, mlflow_run, self._assets)
        load_counts = Counter(chain.from_iterable(n.inputs for n in pipeline.nodes))
        # Kedro's _release_datasets recomputes these per dataset: 2.3 ms a node on a
        # 100-node pipeline, in the one thread that submits tasks.
        inputs, outputs = pipeline.inputs(), pipeline.outputs()
        done_nodes: list[Node] = []

        def finished(unit: WorkUnit, state: Any) -> None:
            if self._options.task_runner == "dask" or unit.pool_tag is not None:
                for timing in state.result():  # it ran in another process, which reported nothing here
                    self._report.started(timing.name)
                    self._report.finished(timing.name, timing.seconds, where=timing.where)
            for node in unit.nodes:
                done_nodes.append(node)
                _release_datasets(node, catalog, load_counts, inputs, outputs)
                self._record_outputs(node, catalog)
            logger.debug("Completed %d out of %d nodes", len(done_nodes), len(pipeline.nodes))

        try:
            failure = self._execute(units, run, finished, catalog)
        except Exception:
            suggest_resume(self, pipeline, done_nodes, catalog)
            raise
        if failure is not None:
            suggest_resume(self, pipeline, done_nodes, catalog)
            self._report.resume_from = resume_from(pipeline, [n.name for n in done_nodes], catalog)
            self._raise_failure(*failure)

    def _execute(
        self, units: list[WorkUnit], run: KedroRun, finished: Callable[[WorkUnit, Any], None], catalog: Any
    ) -> tuple[WorkUnit, Any] | None:
        """Run the units with the configured task runner; the first failed unit and its state, if any."""
        runner = self._options.task_runner
        if runner == "sequential":
            done: dict[str, Any] = {}
            for unit in units:  # wait_for only draws the run graph's edges: parents are done
                state = self._call(unit, run, wait_for=[done[p] for p in unit.parents])
                if not state.is_completed():
                    return unit, state
                done[unit.name] = finished_future(state)
                finished(unit, state)
            return None
        if runner == "threads":
            with ThreadPool(self._options.max_workers) as pool:
                return run_in_pool(
                    units,
                    pool,
                    lambda unit, wait_for: self._submit(pool, unit, run, wait_for),
                    lambda unit, wait_for: self._call(unit, run, wait_for),
                    finished,
                )
        with DaskPool(self._options.dask) as dask:
            return run_in_pool(
                units, dask, lambda unit, wait_for: self._submit(dask, unit, run, wait_for), None, finished
            )

    def _units(self, pipeline: Pipeline, catalog: Any) -> list[WorkUnit]:
        """The pipeline's units: the configured grouping, then each pool tag's connected nodes as one."""
        units = work_units(pipeline, self._options.grouping, catalog)
        return pool_units(pipeline, units, lambda node: self._options.pool_tag(node.name, node.tags))

    def _resumed(
        self, pipeline: Pipeline, units: list[WorkUnit], catalog: Any
    ) -> tuple[Pipeline, list[WorkUnit]]:
        assert self._resume is not None
        to_run, skipped, again = resumed_pipeline(pipeline, units, self._resume, catalog)
        if not skipped:
            return pipeline, units
        reason = f"completed in an earlier attempt (this is attempt {self._resume.attempt})"
        for name in skipped:
            self._report.skipped(name, reason)
        logger.info("Resuming: skipping %s: %s", ", ".join(skipped), reason)
        if again:
            logger.info(
                "Resuming: running %s again: their in-memory outputs feed nodes that run now",
                ", ".join(again),
            )
        return to_run, self._units(to_run, catalog)

    def _refuse_memory_handoffs(self, units: list[WorkUnit], pipeline: Pipeline, catalog: Any) -> None:
        """An in-memory dataset cannot go from one process to another: between any two tasks under
        Dask, into or out of a child run on another pool under every runner."""
        if self._options.task_runner == "dask":
            crossing = memory_handoffs(units, pipeline, catalog)
            where = f"With `run.task_runner: dask` and `group_by: {self._options.grouping}`, tasks run in other processes"
            fix = "or use `run.group_by: memory` (the default under dask)"
        else:
            crossing = memory_handoffs(
                units,
                pipeline,
                catalog,
                lambda made_by, used_by: bool(used_by.pool_tag or (made_by and made_by.pool_tag)),
            )
            where = "Nodes tagged with a `run.node_tags.<tag>.work_pool` run in a child run on that pool"
            fix = "or keep the nodes that exchange it on one side"
        if crossing:
            raise ValueError(
                f"{where}: these in-memory datasets would pass between processes: {', '.join(crossing)}. "
                f"Declare them in the catalog (e.g. as pickle.PickleDataset), {fix}. No node ran."
            )

    def _prefect_task(self, template: Any, unit: WorkUnit) -> Any:
        """The unit's task, named after it: a task run is created (Pending) with a name made
        from the task's name, so the node name shows from the start, not "kedro-node-c47".
        Prefect 3.9's with_options costs ~0.06 ms."""
        options = self._options.task_options(set(unit.tags))
        settings = {
            "name": unit.name,
            "task_run_name": unit.name,
            "retries": options.retries or 0,
            "retry_delay_seconds": options.retry_delay_seconds or 0,
            "timeout_seconds": options.timeout_seconds,
        }
        assets = self._assets.get(unit.name)
        if assets is None or not assets.outputs:
            # no persisted output: its persisted inputs still reach the next materialization
            # as upstream assets (Prefect passes a task's asset_deps on to its wait_for children)
            if assets is not None and assets.inputs:
                settings["asset_deps"] = assets.inputs
            return template.with_options(**settings)
        return materializing(template, assets, settings)

    def _task(self, unit: WorkUnit, run: KedroRun) -> tuple[Any, dict[str, Any]]:
        """Where a unit's nodes execute, as a Prefect task and its arguments: in this process,
        in a Dask worker, or in a child run on a pool tag's work pool."""
        if unit.pool_tag is None and self._options.task_runner != "dask":
            return self._prefect_task(run_kedro_nodes, unit), {"unit": unit, "run": run}
        if self._remote is None:
            raise RuntimeError("a unit in another process needs the run's session details")
        assets = self._assets.get(unit.name)
        spec = RemoteUnit(
            unit.name, unit.node_names, self._memory.get(unit.name, []), assets.payloads if assets else None
        )
        if unit.pool_tag is None:
            return self._prefect_task(run_kedro_nodes_remotely, unit), {"unit": spec, "run": self._remote}
        child = self._children[unit.pool_tag]  # checked before any node ran
        return self._prefect_task(run_nodes_in_child_run, unit), {
            "unit": spec,
            "run": self._remote,
            "child": child,
        }

    def _call(self, unit: WorkUnit, run: KedroRun, wait_for: list) -> Any:
        """Run a unit's task in this thread; returns its final state."""
        body, arguments = self._task(unit, run)
        with tags(*unit.tags):
            return body(**arguments, wait_for=wait_for, return_state=True)

    def _submit(self, pool: Any, unit: WorkUnit, run: KedroRun, wait_for: list) -> Any:
        body, arguments = self._task(unit, run)
        with tags(*unit.tags):  # the submitted task copies this context
            return pool.runner.submit(body, parameters=arguments, wait_for=wait_for)

    def _raise_failure(self, unit: WorkUnit, state: Any) -> None:
        """Raise the node's failure with how to resume; Kedro's error hooks and the flow state carry it.

        A task timeout is wrapped too: raised as is, Prefect would call the *flow* timed out.
        """
        node = self._report.failed_node() or unit.nodes[0].name
        try:
            state.result()
        except KedroNodeError as exc:  # from a Dask worker, which knows the node
            self._report.failed_remotely(exc.node, exc.error)
            raise NodeFailed(
                f"Kedro node '{exc.node}' failed: {sentence(exc.error)} {self._resume_hint()}"
            ) from exc
        except BaseException as exc:
            detail = state.message if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            raise NodeFailed(f"Kedro node '{node}' failed: {sentence(detail)} {self._resume_hint()}") from exc
        raise NodeFailed(
            f"Kedro task '{unit.name}' ended {state.name}: {sentence(state.message)} {self._resume_hint()}"
        )

    def _resume_hint(self) -> str:
        """How to go on: Retry, or the command from the nodes Kedro's rule names (every unfinished branch)."""
        command = resume_command(self._report.pipeline, self._command_options, self._report.resume_from)
        if not self._report.resume_from:
            return f"No node completed: Retry this flow run, or run `{command}` again."
        return f"To resume: Retry this flow run (the nodes that completed are skipped), or `{command}`."

    def _record_outputs(self, node: Node, catalog: Any) -> None:
        for name in node.outputs:
            try:
                written = describe_dataset(name, catalog.get(name))
            except Exception:
                written = None
            if written:
                self._report.written.append(written)


def _release_datasets(node: Node, catalog: Any, load_counts: Counter, inputs: set, outputs: set) -> None:
    """Free data no later node loads, as Kedro's runners do; pipeline inputs and outputs stay."""
    for dataset in node.inputs:
        load_counts[dataset] -= 1
        if load_counts[dataset] < 1 and dataset not in inputs:
            catalog.release(dataset)
    for dataset in node.outputs:
        if load_counts[dataset] < 1 and dataset not in outputs:
            catalog.release(dataset)
