"""Resuming a retried flow run where the earlier attempt failed.

The UI's Retry (or `prefect flow-run retry`, or flow retries) runs the same flow run
again with a higher run count. Its earlier attempts' task runs are still on the
server: units that completed there are skipped, and Kedro's own resume rule adds back
the nodes that must remake in-memory inputs. Skipped nodes' versioned outputs are
loaded at the version the earlier attempt saved; unversioned ones where they are. The
same rule names the nodes a failed run's resume command starts from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from kedro.io import Version
from kedro.pipeline import Pipeline

from kedro_prefect_hooks.compat import is_versioned, resume_start_nodes

logger = logging.getLogger(__name__)

SAVE_VERSION_NOTE = re.compile(r"save version (\S+)\)")


@dataclass(frozen=True)
class EarlierAttempt:
    attempt: int  # this attempt's number (the flow run's run count)
    completed_units: frozenset[str]  # task run names that completed in an earlier attempt
    save_version: str | None  # what the earlier attempt saved versioned datasets under


def earlier_attempt(report_key: str) -> EarlierAttempt | None:
    """What earlier attempts of this flow run completed; None on a first attempt."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.runtime import flow_run

    if (flow_run.run_count or 1) <= 1:
        return None
    this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=this_run)
        reports = client.read_artifacts(
            flow_run_filter=this_run, artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[report_key]))
        )
    completed = frozenset(
        run.name
        for run in task_runs
        if run.state is not None
        and run.state.is_completed()
        and (run.flow_run_run_count or 1) < flow_run.run_count
    )
    versions = [
        m.group(1) for a in reports if a.description and (m := SAVE_VERSION_NOTE.search(a.description))
    ]
    return EarlierAttempt(flow_run.run_count, completed, versions[-1] if versions else None)


def resumed_pipeline(
    pipeline: Pipeline, units: list[Any], earlier: EarlierAttempt, catalog: Any
) -> tuple[Pipeline, list[str], list[str]]:
    """(what runs now, skipped node names, nodes run again to remake in-memory inputs)."""
    done = {node.name for unit in units if unit.name in earlier.completed_units for node in unit.nodes}
    start = resume_from(pipeline, done, catalog)
    if not start:
        return pipeline, [], []
    to_run = pipeline.from_nodes(*start)
    running = {node.name for node in to_run.nodes}
    skipped = [node.name for node in pipeline.nodes if node.name not in running]
    again = [node.name for node in to_run.nodes if node.name in done]
    if earlier.save_version:
        _load_earlier_versions(pipeline, to_run, skipped, catalog, earlier.save_version)
    return to_run, skipped, again


def resume_from(pipeline: Pipeline, done: Collection[str], catalog: Any) -> list[str]:
    """The nodes a resumed run starts from (`--from-nodes`) once the nodes named `done` completed:
    Kedro's own rule, as in its "You can resume the pipeline run" message, so every unfinished
    branch restarts, each from a node whose inputs are persisted. [] when no node completed
    (run it again) or every node did."""
    unfinished = [node for node in pipeline.nodes if node.name not in done]
    if not done or not unfinished:
        return []
    return sorted(resume_start_nodes(pipeline, unfinished, catalog))


def _load_earlier_versions(
    pipeline: Pipeline, to_run: Pipeline, skipped: list[str], catalog: Any, version: str
) -> None:
    """Versioned outputs of skipped nodes that the nodes now running read: at the earlier attempt's version."""
    made_by_skipped = {out for node in pipeline.nodes if node.name in skipped for out in node.outputs}
    for name in made_by_skipped & to_run.inputs():
        if is_versioned(catalog.get(name)):  # an unversioned one is simply where it was written
            catalog[name] = catalog.get(name, version=Version(load=version, save=None))
            logger.info("Resuming: loading '%s' at version %s, saved by the earlier attempt", name, version)
