"""Bring the Prefect server to the desired deployments: the only code that writes to the API."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from kedro_prefect_hooks.api import ApiSettings
from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.plan import (
    DesiredDeployment,
    KedroProject,
    desired_deployments,
    outdated,
    ownership_tags,
    stale,
)

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    created_work_pool: bool = False


def register(
    config: PrefectConfig, project: KedroProject, pipelines: list[str], api: ApiSettings
) -> Outcome:
    """Upsert the selected pipelines' deployments; prune the deselected ones if asked.

    The plan is built (and any config error raised) before the first request.
    When the server already holds every fingerprint, this is one request.
    """
    desired = desired_deployments(config, project, pipelines)
    with api.client(config.timeout) as client:
        on_server = client.deployments_tagged(ownership_tags(project))
        to_write = outdated(desired, on_server)
        extras = len(on_server) != len(desired)
        if not to_write and not (config.prune and extras):
            return Outcome(unchanged=[d.full_name for d in desired])

        _import_prefect_keeping_logging()
        outcome = Outcome()
        outcome.created_work_pool = client.ensure_work_pool(
            config.work_pool.name, _process_pool_template
        )
        flow_ids = {name: client.ensure_flow(name) for name in {d.flow_name for d in desired}}
        schema = _flow_parameter_schema() if to_write else None
        for deployment in to_write:
            client.upsert_deployment(_api_body(deployment, flow_ids, schema))
            outcome.written.append(deployment.full_name)
        outcome.unchanged = [d.full_name for d in desired if d not in to_write]
        if config.prune:
            for old in stale(desired, on_server, flow_ids):
                client.delete_deployment(old["id"])
                outcome.pruned.append(old["name"])
    return outcome


def _api_body(
    deployment: DesiredDeployment, flow_ids: dict[str, str], schema: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        **deployment.body,
        "flow_id": flow_ids[deployment.flow_name],
        "version": deployment.version,
        "parameter_openapi_schema": schema,
    }


def _import_prefect_keeping_logging() -> None:
    """Import prefect without letting it take over the running command's logging.

    Prefect runs `logging.config.dictConfig` on import and, seeing Kedro's rich
    handler as no "user handler", swaps the root handlers for its own.
    """
    if "prefect.main" in sys.modules:
        return
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import prefect.main  # noqa: F401
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _process_pool_template() -> dict[str, Any]:
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def _flow_parameter_schema() -> dict[str, Any]:
    """The flow's parameters as the UI's run form needs them; imports prefect, so only on writes."""
    from prefect.utilities.callables import parameter_schema

    from kedro_prefect_hooks.flow import kedro_pipeline

    return parameter_schema(kedro_pipeline).model_dump(exclude_unset=True)
