"""From config and project to the deployments that should exist: pure, no I/O.

Each desired deployment carries a fingerprint of its full state, stored on the
server as the deployment's `version`; when every fingerprint is already there,
registration has nothing to do.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro_prefect_hooks import __version__
from kedro_prefect_hooks.config import PrefectConfig

MANAGED_TAG = "kedro-prefect-hooks"
FLOW_ENTRYPOINT = "kedro_prefect_hooks.flow.kedro_pipeline"
VERSION_PREFIX = "kph-"
_FORBIDDEN = re.compile(r"[/%&<>]")


@dataclass(frozen=True)
class KedroProject:
    """What registration needs to know about the project and the session."""

    name: str
    package: str
    path: Path
    env: str | None  # as the session got it; None means Kedro's default run env
    run_env: str  # the env actually in force, for names and tags


@dataclass(frozen=True)
class DesiredDeployment:
    pipeline: str
    flow_name: str
    name: str
    body: dict[str, Any]  # the API body, less flow_id and the parameter schema
    version: str = field(init=False)

    def __post_init__(self) -> None:
        state = {"plugin": __version__, "flow": self.flow_name, "body": self.body}
        digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode())
        object.__setattr__(self, "version", VERSION_PREFIX + digest.hexdigest()[:16])

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def sanitise(name: str) -> str:
    """Prefect forbids / % & < > in flow and deployment names: they become '-'."""
    return _FORBIDDEN.sub("-", name).strip() or "-"


def ownership_tags(project: KedroProject) -> list[str]:
    """Tags that mark a deployment as this project's and env's, for finding and pruning."""
    return [MANAGED_TAG, f"kedro-project:{project.package}", f"kedro-env:{project.run_env}"]


def desired_deployments(
    config: PrefectConfig, project: KedroProject, pipelines: list[str]
) -> list[DesiredDeployment]:
    """One deployment per selected pipeline, with its full desired state."""
    desired = []
    for pipeline in pipelines:
        options = config.deployments.get(pipeline)
        options = options.merged_over(config.defaults) if options else config.defaults
        fields = {"project": project.name, "pipeline": pipeline, "env": project.run_env}
        schedule = options.schedule
        body = {
            "name": sanitise(config.names.deployment.format(**fields)),
            "entrypoint": FLOW_ENTRYPOINT,
            # The worker's process starts wherever the worker runs; this step moves it
            # into the project, where the flow bootstraps Kedro.
            "pull_steps": [
                {
                    "prefect.deployments.steps.set_working_directory": {
                        "directory": str(project.path)
                    }
                }
            ],
            "parameters": {
                "pipeline": pipeline,
                "env": project.env,
                **(options.parameters or {}),
            },
            "tags": list(dict.fromkeys([*ownership_tags(project), *(options.tags or [])])),
            "description": options.description
            or f"Kedro pipeline '{pipeline}' of project '{project.name}', "
            "registered by kedro-prefect-hooks.",
            "schedules": [{"schedule": schedule.to_api(), "active": schedule.active}]
            if schedule
            else [],
            "work_pool_name": config.work_pool.name,
            "work_queue_name": options.work_queue,
            "job_variables": config.work_pool.job_variables,
            "concurrency_limit": options.concurrency_limit,
            "paused": bool(options.paused),
            "enforce_parameter_schema": True,
        }
        desired.append(
            DesiredDeployment(
                pipeline=pipeline,
                flow_name=sanitise(config.names.flow.format(**fields)),
                name=body["name"],
                body=body,
            )
        )
    _reject_name_clashes(config, desired)
    return desired


def _reject_name_clashes(config: PrefectConfig, desired: list[DesiredDeployment]) -> None:
    seen: dict[str, str] = {}
    for deployment in desired:
        other = seen.setdefault(deployment.full_name, deployment.pipeline)
        if other != deployment.pipeline:
            raise config.error(
                "names",
                f"pipelines '{other}' and '{deployment.pipeline}' both become deployment "
                f"'{deployment.full_name}'; put {{pipeline}} in the deployment template",
            )


def outdated(
    desired: list[DesiredDeployment], on_server: list[dict[str, Any]]
) -> list[DesiredDeployment]:
    """The desired deployments the server does not hold as they should be.

    A deployment is current when one on the server has its name and fingerprint;
    the fingerprint covers the flow name, so no flow lookup is needed.
    """
    current = {(d["name"], d.get("version")) for d in on_server}
    return [d for d in desired if (d.name, d.version) not in current]


def stale(
    desired: list[DesiredDeployment], on_server: list[dict[str, Any]], flow_ids: dict[str, str]
) -> list[dict[str, Any]]:
    """This project's deployments on the server that are no longer selected."""
    wanted = {(flow_ids[d.flow_name], d.name) for d in desired}
    return [d for d in on_server if (d["flow_id"], d["name"]) not in wanted]
