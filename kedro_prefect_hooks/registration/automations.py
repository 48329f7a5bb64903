"""Automations the plugin keeps on the server: marking runs CRASHED when their heartbeats stop,
and the deployment triggers that chain pipelines (`after`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.prefect_api.settings import ApiSettings
from kedro_prefect_hooks.registration.plan import (
    HEARTBEAT_SECONDS,
    HEARTBEAT_TAG,
    MANAGED_TAG,
    DesiredDeployment,
)

if TYPE_CHECKING:
    from kedro_prefect_hooks.prefect_api.client import PrefectApi

CRASH_AUTOMATION = "kedro-prefect-hooks: mark runs crashed after 90 s without a heartbeat"


def crash_detection(config: PrefectConfig, api: ApiSettings) -> bool:
    """Whether runs send frequent heartbeats and the server marks silent ones CRASHED.

    `auto`: when the API is this project's own local server, however its URL was found.
    """
    if config.mark_crashed_runs == "auto":
        return api.local_server
    return config.mark_crashed_runs


def crash_automation() -> dict[str, Any]:
    """Prefect's documented zombie-run automation, limited to the runs that beat every 30 s.

    Those carry HEARTBEAT_TAG (their deployments do); runs of deployments that did not opt
    in beat every 180 s, and 90 s of silence says nothing about them.
    """
    return {
        "name": CRASH_AUTOMATION,
        "description": "Created by kedro-prefect-hooks: runs tagged "
        f"{HEARTBEAT_TAG} send a heartbeat every {HEARTBEAT_SECONDS} s; one silent for 90 s "
        "(worker or machine gone) is marked CRASHED. Runs without the tag are never judged.",
        "enabled": True,
        "tags": [MANAGED_TAG],
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {
                "prefect.resource.role": "tag",
                "prefect.resource.id": f"prefect.tag.{HEARTBEAT_TAG}",
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


def keep_crash_automation(client: PrefectApi, heartbeats: bool) -> str | None:
    """Create the automation if this registration needs it; correct one that judges other runs.

    Any registration (opted in or not) corrects an automation an earlier version made, which
    matched every run of the plugin's deployments: on a shared server it would mark healthy
    runs of projects that opted out CRASHED. Returns the name when created.
    """
    found = client.automations_named(CRASH_AUTOMATION)
    wanted = crash_automation()
    for automation in found:
        if (automation.get("trigger") or {}).get("match_related") != wanted["trigger"]["match_related"]:
            client.replace_automation(automation["id"], wanted)
    if heartbeats and not found:
        client.create_automation(wanted)
        return CRASH_AUTOMATION
    return None


CHAIN_PREFIX = "kedro-prefect-hooks: run "


def chain_name(deployment: str, upstream: str) -> str:
    return f"{CHAIN_PREFIX}{deployment} when {upstream} completes"


def chain_automation(
    deployment: str, deployment_id: str, upstream: str, upstream_id: str, tags: list[str]
) -> dict[str, Any]:
    """Prefect's deployment trigger: a completed run of `upstream` runs `deployment`.

    Owned by the triggered deployment, so Prefect lists it with it; the plugin deletes
    it with the deployment (Prefect does not).
    """
    return {
        "name": chain_name(deployment, upstream),
        "description": f"Created by kedro-prefect-hooks from `after` in prefect.yml: when a run of "
        f"{upstream} completes, {deployment} runs.",
        "enabled": True,
        "tags": tags,
        "owner_resource": f"prefect.deployment.{deployment_id}",
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {
                "prefect.resource.role": "deployment",
                "prefect.resource.id": f"prefect.deployment.{upstream_id}",
            },
            "after": [],
            "expect": ["prefect.flow-run.Completed"],
            "for_each": ["prefect.resource.id"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {"type": "run-deployment", "source": "selected", "deployment_id": deployment_id, "parameters": {}}
        ],
    }


def asset_automation(
    deployment: str, deployment_id: str, dataset: str, key: str, tags: list[str]
) -> dict[str, Any]:
    """Prefect's deployment trigger on an asset: a materialization of `key` runs `deployment`.

    Any event with that asset key counts: a run of this project, another project's, a
    flow that is not Kedro's. Owned by the triggered deployment, like a chain.
    """
    return {
        "name": f"{CHAIN_PREFIX}{deployment} when {dataset} is materialized",
        "description": f"Created by kedro-prefect-hooks from `after_datasets` in prefect.yml: when "
        f"{key} is materialized, {deployment} runs.",
        "enabled": True,
        "tags": tags,
        "owner_resource": f"prefect.deployment.{deployment_id}",
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": key},
            "match_related": {},
            "after": [],
            "expect": ["prefect.asset.materialization.succeeded"],
            "for_each": [],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {"type": "run-deployment", "source": "selected", "deployment_id": deployment_id, "parameters": {}}
        ],
    }


def chain_matches(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether an automation on the server already is the wanted one (same event, same target)."""
    trigger = existing.get("trigger") or {}
    actions = existing.get("actions") or []
    return (
        all((trigger.get(k) or {}) == wanted["trigger"][k] for k in ("match", "match_related"))
        and list(trigger.get("expect") or []) == wanted["trigger"]["expect"]
        and [a.get("deployment_id") for a in actions] == [wanted["actions"][0]["deployment_id"]]
        and existing.get("enabled", True)
    )


def reconcile_chains(
    client: PrefectApi, desired: list[DesiredDeployment], ids: dict[str, str], tags: list[str]
) -> list[str]:
    """Deployment triggers from `after` and `after_datasets`: created, replaced when an id or a key
    changed, deleted when gone.

    Only triggers that run this owner's deployments are touched. Returns those created.
    """
    wanted = {
        body["name"]: body
        for d in desired
        if d.full_name in ids
        for upstream in d.after
        if upstream in ids
        for body in [chain_automation(d.full_name, ids[d.full_name], upstream, ids[upstream], tags)]
    }
    wanted.update(
        (body["name"], body)
        for d in desired
        if d.full_name in ids
        for dataset, key in d.after_assets
        for body in [asset_automation(d.full_name, ids[d.full_name], dataset, key, tags)]
    )
    ours = set(ids.values())
    existing = {}
    for automation in client.automations_tagged(tags):
        targets = {a.get("deployment_id") for a in automation.get("actions") or []}
        if not automation["name"].startswith(CHAIN_PREFIX) or not targets & ours:
            continue
        if automation["name"] in wanted and chain_matches(automation, wanted[automation["name"]]):
            existing[automation["name"]] = automation
        else:
            client.delete_automation(automation["id"])
    created = []
    for name, body in wanted.items():
        if name not in existing:
            client.create_automation(body)
            created.append(name.removeprefix(CHAIN_PREFIX))
    return created
