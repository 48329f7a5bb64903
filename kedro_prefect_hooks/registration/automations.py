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
