"""Bring the Prefect server to the desired deployments: the only code that writes to the API."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.compat import import_prefect
from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.local.processes import state_dir, write_private
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.api import ApiRefused, PrefectApi
from kedro_prefect_hooks.registration.connection import LOCAL_SERVER, ApiSettings, PrefectApiError
from kedro_prefect_hooks.registration.plan import (
    HEARTBEAT_SECONDS,
    MANAGED_TAG,
    SET_TAG_PREFIX,
    DesiredDeployment,
    desired_deployments,
    fingerprint,
    ownership_tags,
    stale,
)

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # only when nothing was written
    pruned: list[str] = field(default_factory=list)
    created_work_pool: str | None = None
    created_automation: str | None = None

    def summary(self) -> str:
        """One line on what was written; empty when nothing was."""
        parts = []
        if self.written:
            parts.append(f"registered {', '.join(self.written)}")
        if self.pruned:
            parts.append(f"pruned {', '.join(self.pruned)}")
        if self.created_work_pool:
            parts.append(f"created process work pool '{self.created_work_pool}'")
        if self.created_automation:
            parts.append(f"created automation '{self.created_automation}'")
        return "; ".join(parts)


class PartialRegistration(PrefectApiError):
    """Some deployments were written and the server refused others; the message names each."""


CRASH_AUTOMATION = "kedro-prefect-hooks: mark runs crashed after 90 s without a heartbeat"


def register(
    config: PrefectConfig,
    project: KedroProject,
    pipelines: list[str],
    api: ApiSettings,
    prune: bool | None = None,
    retry_refused: bool = False,
) -> Outcome:
    """Upsert the selected pipelines' deployments; prune the deselected ones if asked.

    The plan is built (and any config error raised) before the first request.
    When the server already holds the desired set, this is one count request
    (two with `prune`). Otherwise every desired deployment is written in full,
    since a Prefect update replaces fields. A set the server refused is not
    sent again by later sessions until it changes, or `retry_refused` (the
    `kedro prefect register` command) asks for it.
    """
    prune = config.prune if prune is None else prune
    heartbeats = crash_detection(config, api)
    desired = desired_deployments(config, project, pipelines, heartbeats=heartbeats)
    version = fingerprint(desired)
    owned = ownership_tags(project)
    client = PrefectApi(api, config.timeout)
    if client.count_deployments([*owned, SET_TAG_PREFIX + version]) == len(desired) and (
        not prune or client.count_deployments(owned) == len(desired)
    ):
        return Outcome(unchanged=[d.full_name for d in desired])
    refusals = RefusalRecord(project.path, api.url)
    if not retry_refused and (refused := refusals.earlier(version)):
        raise PrefectApiError(
            f"nothing sent: the server refused this same configuration before ({refused}). "
            "Fix prefect.yml, or send it again with `kedro prefect register`."
        )

    import_prefect()
    outcome = Outcome()
    if client.ensure_work_pool(config.work_pool.name, _process_pool_template):
        outcome.created_work_pool = config.work_pool.name
    if heartbeats and client.ensure_automation(CRASH_AUTOMATION, _crash_automation):
        outcome.created_automation = CRASH_AUTOMATION
    flow_ids = {name: client.ensure_flow(name) for name in {d.flow_name for d in desired}}
    schema = _flow_parameter_schema()
    failed: dict[str, str] = {}
    for deployment in desired:
        try:
            client.upsert_deployment(_api_body(deployment, flow_ids[deployment.flow_name], version, schema))
        except ApiRefused as exc:  # this deployment only: the others may still be written
            failed[deployment.full_name] = exc.detail
            continue
        outcome.written.append(deployment.full_name)
    if failed:
        refusals.remember(version, "; ".join(f"{name}: {why}" for name, why in failed.items()))
        raise PartialRegistration(
            f"registered {', '.join(outcome.written) or 'nothing'}; the server at {api.url} refused "
            + "; ".join(f"{name} ({why})" for name, why in failed.items())
        )
    refusals.forget()
    if prune:
        for old in stale(desired, client.deployments_tagged(owned), flow_ids):
            client.delete_deployment(old["id"])
            outcome.pruned.append(old["name"])
    return outcome


def crash_detection(config: PrefectConfig, api: ApiSettings) -> bool:
    """Whether runs send frequent heartbeats and the server marks silent ones CRASHED."""
    if config.mark_crashed_runs == "auto":
        return api.source == LOCAL_SERVER
    return config.mark_crashed_runs


def _crash_automation() -> dict[str, Any]:
    """Prefect's documented zombie-run automation, limited to runs of this plugin's deployments."""
    return {
        "name": CRASH_AUTOMATION,
        "description": "Created by kedro-prefect-hooks: runs of its deployments send a heartbeat "
        f"every {HEARTBEAT_SECONDS} s; one silent for 90 s (worker or machine gone) is marked CRASHED.",
        "enabled": True,
        "tags": [MANAGED_TAG],
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {
                "prefect.resource.role": "tag",
                "prefect.resource.id": f"prefect.tag.{MANAGED_TAG}",
            },
            "after": ["prefect.flow-run.heartbeat"],
            "expect": ["prefect.flow-run.*"],
            "for_each": ["prefect.resource.id"],
            "posture": "Proactive",
            "threshold": 1,
            "within": 90,
        },
        "actions": [
            {
                "type": "change-flow-run-state",
                "state": "CRASHED",
                "message": "No heartbeat for 90 s: the worker or its machine stopped (kedro-prefect-hooks).",
            }
        ],
    }


class RefusalRecord:
    """The last set of deployments the server refused, per API, under .kedro-prefect/."""

    def __init__(self, project_path: Path, api_url: str):
        self.path = state_dir(project_path) / "refused.json"
        self.api_url = api_url

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def earlier(self, version: str) -> str | None:
        entry = self._read().get(self.api_url) or {}
        return entry.get("reason") if entry.get("fingerprint") == version else None

    def remember(self, version: str, reason: str) -> None:
        data = self._read()
        data[self.api_url] = {"fingerprint": version, "reason": reason}
        write_private(self.path, json.dumps(data))

    def forget(self) -> None:
        data = self._read()
        if data.pop(self.api_url, None) is not None:
            write_private(self.path, json.dumps(data))


@dataclass(frozen=True)
class Change:
    deployment: str  # "<flow>/<name>"
    action: str  # create | update | unchanged | prune
    differs: tuple[str, ...] = ()


def preview(
    config: PrefectConfig, project: KedroProject, pipelines: list[str], api: ApiSettings
) -> list[Change]:
    """What `register` would do, deployment by deployment, without writing anything."""
    desired = desired_deployments(config, project, pipelines, heartbeats=crash_detection(config, api))
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
        if key == "concurrency_options":
            return (value or {}).get("collision_strategy")
        return value

    # The API answers concurrency_limit as null and the limit under global_concurrency_limit.
    current = {**current, "concurrency_limit": (current.get("global_concurrency_limit") or {}).get("limit")}
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
