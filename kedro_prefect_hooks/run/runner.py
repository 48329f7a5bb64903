"""A Kedro runner that runs each node, or each namespace group, as a Prefect task.

It plugs into `KedroSession.run`, so Kedro builds the catalog (with the run's
save version), fires the pipeline hooks and checks inputs exactly as under
`kedro run`. Nodes run through `kedro.runner.Task` with the session's hook
manager, so node and dataset hooks fire too.
"""

from __future__ import annotations

import concurrent.futures
import graphlib
import logging
import time
from collections import Counter
from itertools import chain
from typing import Any

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner, Task
from prefect import tags, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from kedro_prefect_hooks.compat import suggest_resume
from kedro_prefect_hooks.config import RunOptions
from kedro_prefect_hooks.run.report import RunReport, describe_dataset

logger = logging.getLogger(__name__)


class WorkUnit:
    """Nodes that run in one Prefect task, in order, and the units they wait for."""

    def __init__(self, name: str, nodes: list[Node], parents: list[str]):
        self.name = name
        self.nodes = nodes
        self.parents = parents
        self.tags = sorted(set(chain.from_iterable(n.tags for n in nodes)))


class KedroRun:
    """What every task of one Kedro run shares: the catalog, the hooks, the run id, the report.

    Plain classes, not dataclasses: Prefect walks dataclass parameters looking for
    futures, and this one holds the catalog.
    """

    def __init__(self, catalog: Any, hook_manager: Any, run_id: str | None, report: RunReport):
        self.catalog = catalog
        self.hook_manager = hook_manager
        self.run_id = run_id
        self.report = report


def work_units(pipeline: Pipeline, group_by: str) -> list[WorkUnit]:
    """One unit per node, or per top-level namespace; in an order where parents come first.

    Grouping can create a cycle (namespace A feeds a node outside it that feeds
    A again); that is a clear error rather than a hung run.
    """
    by_name = {node.name: node for node in pipeline.nodes}
    groups = pipeline.group_nodes_by(group_by)
    units = {g.name: WorkUnit(g.name, [by_name[n] for n in g.nodes], list(g.dependencies)) for g in groups}
    sorter = graphlib.TopologicalSorter({name: unit.parents for name, unit in units.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ValueError(
            f"`run.group_by: {group_by}` makes groups that depend on each other ({cycle}); "
            "use `group_by: none` for this pipeline, or keep each namespace's nodes together"
        ) from None
    return [units[name] for name in order]


@task(name="kedro-node", task_run_name="{unit.name}", cache_policy=NO_CACHE, persist_result=False)
def run_kedro_nodes(unit: WorkUnit, run: KedroRun) -> None:
    """The body of every task: Kedro's own node runner, node by node.

    One task object serves every unit with the same retry settings (building a
    Prefect task costs ~3 ms); the run name comes from the unit, tags from a context.
    """
    for node in unit.nodes:
        run.report.started(node.name)
        start = time.perf_counter()
        try:
            Task(
                node=node,
                catalog=run.catalog,
                hook_manager=run.hook_manager,
                is_async=False,
                run_id=run.run_id,
            ).execute()
        except BaseException as exc:
            run.report.finished(node.name, time.perf_counter() - start, exc)
            raise
        run.report.finished(node.name, time.perf_counter() - start)


def _release_datasets(node: Node, catalog: Any, load_counts: Counter, inputs: set, outputs: set) -> None:
    """Free data no later node loads, as Kedro's runners do; pipeline inputs and outputs stay."""
    for dataset in node.inputs:
        load_counts[dataset] -= 1
        if load_counts[dataset] < 1 and dataset not in inputs:
            catalog.release(dataset)
    for dataset in node.outputs:
        if load_counts[dataset] < 1 and dataset not in outputs:
            catalog.release(dataset)


class PrefectRunner(AbstractRunner):
    """Submits work units to Prefect as their parents finish, like Kedro's own runners."""

    def __init__(self, options: RunOptions, report: RunReport):
        super().__init__(is_async=False)
        self._options = options
        self._report = report
        self._tasks: dict[tuple, Any] = {}
        self._run_state: KedroRun | None = None

    def _get_executor(self, max_workers: int) -> None:
        return None  # tasks go through Prefect's task runner, not an executor of Kedro's

    def _run(self, pipeline, catalog, hook_manager=None, run_id=None) -> None:
        units = work_units(pipeline, self._options.group_by)
        self._report.set_nodes([n.name for n in pipeline.nodes])
        self._run_state = KedroRun(catalog, hook_manager, run_id, self._report)
        load_counts = Counter(chain.from_iterable(n.inputs for n in pipeline.nodes))
        # Kedro's _release_datasets recomputes these per dataset: 2.3 ms a node
        # on a 100-node pipeline, in the one thread that submits tasks.
        inputs, outputs = pipeline.inputs(), pipeline.outputs()
        done_nodes: list[Node] = []

        def finished(unit: WorkUnit) -> None:
            for node in unit.nodes:
                done_nodes.append(node)
                _release_datasets(node, catalog, load_counts, inputs, outputs)
                self._record_outputs(node, catalog)
            # DEBUG, not INFO as in Kedro's runners: each task run already shows its state,
            # and a console line per node held up submissions (measured, 100-node fan-out).
            logger.debug("Completed %d out of %d nodes", len(done_nodes), len(pipeline.nodes))

        try:
            if self._options.task_runner == "sequential":
                self._run_sequentially(units, finished)
            else:
                self._run_in_threads(units, finished)
        except Exception:
            suggest_resume(self, pipeline, done_nodes, catalog)
            raise

    def _prefect_task(self, unit: WorkUnit):
        options = self._options.task_options(set(unit.tags))
        key = (options.retries, options.retry_delay_seconds, options.timeout_seconds)
        if key not in self._tasks:
            self._tasks[key] = run_kedro_nodes.with_options(
                retries=options.retries or 0,
                retry_delay_seconds=options.retry_delay_seconds or 0,
                timeout_seconds=options.timeout_seconds,
            )
        return self._tasks[key]

    def _call(self, unit: WorkUnit, wait_for: list) -> Any:
        """Run a unit's task in this thread; returns its final state."""
        with tags(*unit.tags):
            return self._prefect_task(unit)(unit, self._run_state, wait_for=wait_for, return_state=True)

    def _run_sequentially(self, units: list[WorkUnit], finished) -> None:
        states: dict[str, Any] = {}
        for unit in units:
            state = self._call(unit, wait_for=[states[p] for p in unit.parents])
            states[unit.name] = state
            if not state.is_completed():
                self._raise_failure(unit, state)
            finished(unit)

    def _run_in_threads(self, units: list[WorkUnit], finished) -> None:
        """Submit a unit once its parents completed; after a failure, submit nothing more."""
        todo = list(units)
        done: set[str] = set()
        futures: dict[str, Any] = {}
        running: dict[concurrent.futures.Future, WorkUnit] = {}
        failed: tuple[WorkUnit, Any] | None = None
        task_runner: ThreadPoolTaskRunner[Any]
        with ThreadPoolTaskRunner(max_workers=self._options.max_workers) as task_runner:
            while True:
                if failed is None:
                    ready = [u for u in todo if all(p in done for p in u.parents)]
                    if len(ready) == 1 and not running:
                        # Nothing else can run meanwhile (a chain): call it in this
                        # thread and skip the hand-off to the pool.
                        unit = ready[0]
                        todo.remove(unit)
                        state = self._call(unit, wait_for=[futures[p] for p in unit.parents])
                        futures[unit.name] = state  # wait_for takes states as well as futures
                        if state.is_completed():
                            done.add(unit.name)
                            finished(unit)
                        else:
                            failed = (unit, state)
                        continue
                    for unit in ready:
                        todo.remove(unit)
                        with tags(*unit.tags):  # the submitted task copies this context
                            future: Any = task_runner.submit(
                                self._prefect_task(unit),
                                parameters={"unit": unit, "run": self._run_state},
                                wait_for=[futures[p] for p in unit.parents],
                            )
                        futures[unit.name] = future
                        running[future.wrapped_future] = unit
                if not running:
                    break
                finished_now, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for wrapped in finished_now:
                    unit = running.pop(wrapped)
                    if wrapped.result().is_completed():
                        done.add(unit.name)
                        finished(unit)
                    elif failed is None:
                        failed = (unit, wrapped.result())
        if failed is not None:
            self._raise_failure(*failed)
        if todo:
            raise RuntimeError(f"Units never became ready: {[u.name for u in todo]}")

    def _raise_failure(self, unit: WorkUnit, state: Any) -> None:
        """Re-raise the node's own exception, so Kedro's error hooks and the flow state carry it."""
        try:
            state.result()
        except TimeoutError as exc:
            # Raised as is, Prefect would report the *flow* as timed out.
            raise RuntimeError(f"Kedro task '{unit.name}': {state.message}") from exc
        raise RuntimeError(f"Kedro task '{unit.name}' ended {state.name}: {state.message}")

    def _record_outputs(self, node: Node, catalog: Any) -> None:
        for name in node.outputs:
            try:
                written = describe_dataset(name, catalog.get(name))
            except Exception:
                written = None
            if written:
                self._report.written.append(written)
