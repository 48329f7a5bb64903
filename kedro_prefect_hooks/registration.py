"""Bring the Prefect server to the desired deployments: the only code that writes to the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kedro_prefect_hooks.api import ApiSettings, PrefectApi
from kedro_prefect_hooks.compat import import_prefect
from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.plan import (
    SET_TAG_PREFIX,
    DesiredDeployment,
    desired_deployments,
    fingerprint,
    ownership_tags,
    stale,
)
from kedro_prefect_hooks.project import KedroProject

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # only when nothing was written
    pruned: list[str] = field(default_factory=list)
    created_work_pool: bool = False


def register(config: PrefectConfig, project: KedroProject, pipelines: list[str], api: ApiSettings) -> Outcome:
    """Upsert the selected pipelines' deployments; prune the deselected ones if asked.

    The plan is built (and any config error raised) before the first request.
    When the server already holds the desired set, this is one count request
    (two with `prune`). Otherwise every desired deployment is written in full,
    since a Prefect update replaces fields.
    """
    desired = desired_deployments(config, project, pipelines)
    version = fingerprint(desired)
    owned = ownership_tags(project)
    client = PrefectApi(api, config.timeout)
    if client.count_deployments([*owned, SET_TAG_PREFIX + version]) == len(desired) and (
        not config.prune or client.count_deployments(owned) == len(desired)
    ):
        return Outcome(unchanged=[d.full_name for d in desired])

    import_prefect()
    outcome = Outcome()
    outcome.created_work_pool = client.ensure_work_pool(config.work_pool.name, _process_pool_template)
    flow_ids = {name: client.ensure_flow(name) for name in {d.flow_name for d in desired}}
    schema = _flow_parameter_schema()
    for deployment in desired:
        client.upsert_deployment(_api_body(deployment, flow_ids[deployment.flow_name], version, schema))
        outcome.written.append(deployment.full_name)
    if config.prune:
        for old in stale(desired, client.deployments_tagged(owned), flow_ids):
            client.delete_deployment(old["id"])
            outcome.pruned.append(old["name"])
    return outcome


@dataclass(frozen=True)
class Change:
    deployment: str  # "<flow>/<name>"
    action: str  # create | update | unchanged | prune
    differs: tuple[str, ...] = ()


def preview(
    config: PrefectConfig, project: KedroProject, pipelines: list[str], api: ApiSettings
) -> list[Change]:
    """What `register` would do, deployment by deployment, without writing anything."""
    desired = desired_deployments(config, project, pipelines)
    set_tag = SET_TAG_PREFIX + fingerprint(desired)
    client = PrefectApi(api, config.timeout)
    on_server = client.deployments_tagged(ownership_tags(project))
    flow_names = {d["flow_id"]: client.flow_name(d["flow_id"]) for d in on_server}
    by_name = {(flow_names[d["flow_id"]], d["name"]): d for d in on_server}
    changes = []
    for deployment in desired:
        current = by_name.pop((deployment.flow_name, deployment.name), None)
        if current is None:
            current = client.deployment_by_name(deployment.flow_name, deployment.name)
        if current is None:
            changes.append(Change(deployment.full_name, "create"))
        elif set_tag in current["tags"]:
            changes.append(Change(deployment.full_name, "unchanged"))
        else:
            changes.append(Change(deployment.full_name, "update", _differences(deployment.body, current)))
    if config.prune:
        changes += [Change(f"{flow_names[d['flow_id']]}/{d['name']}", "prune") for d in by_name.values()]
    return changes


def _differences(body: dict[str, Any], current: dict[str, Any]) -> tuple[str, ...]:
    """The fields of the desired body that the server's deployment does not match."""

    def normal(key: str, value: Any) -> Any:
        if key == "tags":
            return sorted(t for t in value or [] if not t.startswith(SET_TAG_PREFIX))
        if key == "schedules":
            return [(s["schedule"], s.get("active", True)) for s in value or []]
        if key == "work_queue_name":
            return value or "default"
        return value

    differs = tuple(k for k in body if k != "name" and normal(k, body[k]) != normal(k, current.get(k)))
    return differs or ("plugin version",)


def _api_body(
    deployment: DesiredDeployment, flow_id: str, version: str, schema: dict[str, Any]
) -> dict[str, Any]:
    return {
        **deployment.body,
        "tags": [*deployment.body["tags"], SET_TAG_PREFIX + version],
        "flow_id": flow_id,
        "version": version,
        "parameter_openapi_schema": schema,
    }


def _process_pool_template() -> dict[str, Any]:
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def _flow_parameter_schema() -> dict[str, Any]:
    """The flow's parameters as the UI's run form needs them; imports prefect, so only on writes."""
    from prefect.utilities.callables import parameter_schema

    from kedro_prefect_hooks.flow import kedro_pipeline

    return parameter_schema(kedro_pipeline).model_dump(exclude_unset=True)
