"""One MLflow run per flow run: the flow thread's active MLflow run, shared with the threads and
processes that run nodes, and tagged with the Prefect flow run.

Since MLflow 2.18 the fluent API's active run (`mlflow.active_run()`, `mlflow.log_param`,
kedro-mlflow's metric and artifact datasets) is per thread: a node run by a pool thread or a
Dask worker sees no active run, and MLflow's fluent calls then start a new run there (left
RUNNING) or fail. kedro-mlflow starts its run in `before_pipeline_run` (the flow's thread); the
runner reads it from there once, and each task makes it the active run of its own thread for
the task's duration, without starting (no status write, no system-metrics monitor) or ending it.

Everything here is a no-op unless mlflow was imported in the flow's process and a run is active
in the flow's thread when the runner starts, so a project without MLflow pays nothing.

The thread's run stack is private MLflow API, reached through compat.mlflow_thread_run_stack.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kedro_prefect_hooks.compat import mlflow_thread_run_stack

logger = logging.getLogger(__name__)


class SharedRun:
    """The flow thread's active MLflow run: plain and picklable, it travels to Dask workers."""

    def __init__(self, run: Any, tracking_uri: str):
        self.run = run  # mlflow.ActiveRun, as the flow thread's stack holds it
        self.run_id: str = run.info.run_id
        self.tracking_uri = tracking_uri


def flow_thread_run() -> SharedRun | None:
    """The MLflow run active in this thread, if mlflow is in use; call it in the flow's thread,
    after the pipeline hooks ran (kedro-mlflow starts its run in before_pipeline_run)."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    try:
        run = mlflow.active_run()
        return None if run is None else SharedRun(run, mlflow.get_tracking_uri())
    except Exception as exc:  # a broken MLflow setup is the project's to report, not ours
        logger.debug("No MLflow run to share: %s", exc)
        return None


def tag_with_flow_run(shared: SharedRun | None) -> None:
    """Record the Prefect flow run (id, name, UI URL, deployment) on the MLflow run; never fails the run."""
    if shared is None:
        return
    try:
        from mlflow.entities import RunTag
        from mlflow.tracking import MlflowClient
        from prefect.runtime import deployment, flow_run

        tags = {
            "prefect.flow_run_id": flow_run.id,
            "prefect.flow_run_name": flow_run.name,
            "prefect.flow_run_url": flow_run.ui_url,
            "prefect.flow_run_attempt": flow_run.run_count,  # a retried flow run makes a new MLflow run
            "prefect.deployment_name": deployment.name,
        }
        MlflowClient(shared.tracking_uri).log_batch(
            shared.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items() if value]
        )
    except Exception as exc:
        logger.warning("Could not tag MLflow run %s with the Prefect flow run: %s", shared.run_id, exc)


@contextmanager
def active_in_this_thread(shared: SharedRun | None) -> Iterator[None]:
    """For a task's body: `shared` is this thread's active MLflow run while the task runs.

    On exit this thread's stack is as it was: the entries of the shared run pushed meanwhile
    are dropped, ours and those of kedro-mlflow's before_node_run (which re-opens the run in
    every node's thread and never closes it), so no thread keeps the run after its task. The
    run itself is neither started nor ended here: kedro-mlflow ends it in after_pipeline_run.
    """
    stack = mlflow_thread_run_stack() if shared is not None else None
    if stack is None:
        yield
        return
    assert shared is not None
    depth = len(stack)
    if not stack or stack[-1].info.run_id != shared.run_id:
        stack.append(shared.run)
    try:
        yield
    finally:
        stack[depth:] = [run for run in stack[depth:] if run.info.run_id != shared.run_id]
