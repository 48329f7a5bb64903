"""Automations the plugin keeps on the server: marking runs CRASHED when their heartbeats stop."""

from __future__ import annotations

from typing import Any

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.registration.connection import LOCAL_SERVER, ApiSettings
from kedro_prefect_hooks.registration.plan import HEARTBEAT_SECONDS, MANAGED_TAG

CRASH_AUTOMATION = "kedro-prefect-hooks: mark runs crashed after 90 s without a heartbeat"


def crash_detection(config: PrefectConfig, api: ApiSettings) -> bool:
    """Whether runs send frequent heartbeats and the server marks silent ones CRASHED."""
    if config.mark_crashed_runs == "auto":
        return api.source == LOCAL_SERVER
    return config.mark_crashed_runs


def crash_automation() -> dict[str, Any]:
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


def chain_matches(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether an automation on the server already is the wanted one (same upstream, same target)."""
    related = (existing.get("trigger") or {}).get("match_related") or {}
    actions = existing.get("actions") or []
    return (
        related == wanted["trigger"]["match_related"]
        and [a.get("deployment_id") for a in actions] == [wanted["actions"][0]["deployment_id"]]
        and existing.get("enabled", True)
    )
