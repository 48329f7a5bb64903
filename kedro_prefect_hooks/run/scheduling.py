"""Submitting units to a Prefect task runner as their parents complete, and waiting for them.

The same loop serves threads (ThreadPoolTaskRunner, in this process) and Dask
(prefect-dask's DaskTaskRunner, in worker processes); only how a future is waited
for differs. After a failure nothing more is submitted; running units finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

from kedro_prefect_hooks.config.run import DaskOptions
from kedro_prefect_hooks.run.units import WorkUnit

logger = logging.getLogger(__name__)


class ThreadPool:
    """Prefect's thread pool task runner; futures wrap concurrent.futures ones."""

    def __init__(self, max_workers: int):
        from prefect.task_runners import ThreadPoolTaskRunner

        self.runner: Any = ThreadPoolTaskRunner(max_workers=max_workers)

    def __enter__(self) -> ThreadPool:
        self.runner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.runner.__exit__(*exc)

    def wait_any(self, futures: list[Any]) -> list[Any]:
        done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)


class DaskPool:
    """prefect-dask's task runner on an existing scheduler, or on a temporary local cluster of processes."""

    def __init__(self, options: DaskOptions):
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise RuntimeError(
                "`run.task_runner: dask` needs prefect-dask: pip install 'kedro-prefect-hooks[dask]'"
            ) from None
        if options.address:
            self.runner: Any = DaskTaskRunner(address=options.address)
        else:
            self.runner = DaskTaskRunner(
                cluster_kwargs={
                    "n_workers": options.n_workers,
                    "threads_per_worker": options.threads_per_worker,
                    "processes": True,
                }
            )

    def __enter__(self) -> DaskPool:
        self.runner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        """Close the client (and the temporary cluster). Closing can time out on a loaded machine
        (worker processes slow to stop): after the units ended, that must not fail the run."""
        try:
            self.runner.__exit__(*exc)
        except (TimeoutError, asyncio.TimeoutError):
            if exc[0] is not None:
                raise
            logger.warning("Closing the Dask cluster timed out; the run's tasks had all ended")

    def wait_any(self, futures: list[Any]) -> list[Any]:
        import distributed

        with self.runner.client.as_current():
            done, _ = distributed.wait(futures, return_when="FIRST_COMPLETED")
        return list(done)


def finished_future(state: Any) -> Any:
    """A finished task's state as a done Prefect future: what `wait_for` takes at least cost.

    Prefect walks every field of a State passed in `wait_for` (1.7 ms a node, measured on
    a 200-node chain); a future it only asks for its task run id and final state.
    """
    from prefect.futures import PrefectConcurrentFuture

    done: concurrent.futures.Future = concurrent.futures.Future()
    done.set_result(state)
    return PrefectConcurrentFuture(state.state_details.task_run_id, done)


def run_in_pool(
    units: list[WorkUnit],
    pool: ThreadPool | DaskPool,
    submit: Callable[[WorkUnit, list], Any],
    call_here: Callable[[WorkUnit, list], Any] | None,
    finished: Callable[[WorkUnit, Any], None],
) -> tuple[WorkUnit, Any] | None:
    """Submit each unit once its parents completed; the first failed unit and its state, if any.

    `call_here` (threads only): a unit that is the only one ready while nothing runs
    (a chain) is called in this thread, skipping the hand-off to the pool.
    """
    todo = list(units)
    done: set[str] = set()
    futures: dict[str, Any] = {}
    running: dict[Any, WorkUnit] = {}
    failed: tuple[WorkUnit, Any] | None = None
    while True:
        if failed is None:
            ready = [u for u in todo if all(p in done for p in u.parents)]
            if call_here is not None and len(ready) == 1 and not running:
                unit = ready[0]
                todo.remove(unit)
                state = call_here(unit, [futures[p] for p in unit.parents])
                futures[unit.name] = finished_future(state)
                if state.is_completed():
                    done.add(unit.name)
                    finished(unit, state)
                else:
                    failed = (unit, state)
                continue
            for unit in ready:
                todo.remove(unit)
                future = submit(unit, [futures[p] for p in unit.parents])
                futures[unit.name] = future
                running[future.wrapped_future] = unit
        if not running:
            break
        for wrapped in pool.wait_any(list(running)):
            unit = running.pop(wrapped)
            state = wrapped.result()
            if state.is_completed():
                done.add(unit.name)
                finished(unit, state)
            elif failed is None:
                failed = (unit, state)
    if failed is None and todo:
        raise RuntimeError(f"Units never became ready: {[u.name for u in todo]}")
    return failed
