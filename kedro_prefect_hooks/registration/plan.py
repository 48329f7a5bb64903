"""From config and project to the deployments that should exist: pure, no I/O.

The whole desired set has one fingerprint, written on every deployment as a tag
(`kph-set:<fp>`) and as its `version`. Counting the deployments with that tag is
one 4 ms request; listing 50 full deployments takes the server 0.4 s (measured).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.version import __version__

MANAGED_TAG = "kedro-prefect-hooks"
FLOW_ENTRYPOINT = "kedro_prefect_hooks.flow.kedro_pipeline"
SET_TAG_PREFIX = "kph-set:"
_FORBIDDEN = re.compile(r"[/%&<>]")
# Prefect's shortest heartbeat: with runs beating every 30 s, an automation can mark
# a run CRASHED after 90 s of silence without ever catching a healthy one.
HEARTBEAT_SECONDS = 30


@dataclass(frozen=True)
class DesiredDeployment:
    pipeline: str
    flow_name: str
    name: str
    body: dict[str, Any]  # the API body, less flow_id, fingerprint and parameter schema

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
    config: PrefectConfig, project: KedroProject, pipelines: list[str], heartbeats: bool = False
) -> list[DesiredDeployment]:
    """One deployment per selected pipeline, with its full desired state.

    `heartbeats`: runs send a heartbeat every HEARTBEAT_SECONDS (set in the job's
    environment, so any worker's runs do), for crash detection.
    """
    desired = []
    for pipeline in pipelines:
        options = config.options_for(pipeline)
        fields = {"project": project.name, "pipeline": pipeline, "env": project.run_env}
        schedule = options.schedule
        name = sanitise(config.names.deployment.format(**fields))
        body: dict[str, Any] = {
            "name": name,
            "entrypoint": FLOW_ENTRYPOINT,
            # The worker's process starts wherever the worker runs; this step moves it
            # into the project, where the flow bootstraps Kedro.
            "pull_steps": [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(project.path)}}
            ],
            "parameters": {
                "pipeline": pipeline,
                "env": project.env,
                **(options.parameters or {}),
            },
            "tags": list(dict.fromkeys([*ownership_tags(project), *(options.tags or [])])),
            "description": options.description
            or f"Kedro pipeline '{pipeline}' of project '{project.name}', registered by kedro-prefect-hooks.",
            "schedules": [{"schedule": schedule.to_api(), "active": schedule.active}] if schedule else [],
            "work_pool_name": config.work_pool.name,
            "work_queue_name": options.work_queue,
            "job_variables": _job_variables(config.work_pool.job_variables, heartbeats),
            "concurrency_limit": options.concurrency_limit,
            "concurrency_options": {"collision_strategy": options.collision_strategy.upper()}
            if options.concurrency_limit
            else None,
            "paused": bool(options.paused),
            "enforce_parameter_schema": True,
        }
        desired.append(
            DesiredDeployment(
                pipeline=pipeline,
                flow_name=sanitise(config.names.flow.format(**fields)),
                name=name,
                body=body,
            )
        )
    _reject_name_clashes(config, desired)
    return desired


def _job_variables(configured: dict[str, Any], heartbeats: bool) -> dict[str, Any]:
    """The pool's job variables; with heartbeats, the frequency joins `env` unless the user set it."""
    if not heartbeats:
        return configured
    env = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS), **(configured.get("env") or {})}
    return {**configured, "env": env}


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


def fingerprint(desired: list[DesiredDeployment]) -> str:
    """One hash of the full desired state of every deployment, and of the plugin version."""
    state = [__version__, *sorted((d.flow_name, d.name, d.body) for d in desired)]
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def stale(
    desired: list[DesiredDeployment], on_server: list[dict[str, Any]], flow_ids: dict[str, str]
) -> list[dict[str, Any]]:
    """This project's deployments on the server that are no longer selected."""
    wanted = {(flow_ids[d.flow_name], d.name) for d in desired}
    return [d for d in on_server if (d["flow_id"], d["name"]) not in wanted]
