"""What registering would change, deployment by deployment: the desired state against the server's.

A deployment is this session's to write only if its owner is this session's (ownership.py:
project, env, and the repository, directory source or checkout; a release keeps them).
Deployments made by kedro-prefect-hooks 0.1 (no label, the project's and env's tags) count
as this project's, so upgrading takes them over once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.ownership import CHECKOUT_LABEL, is_ours
from kedro_prefect_hooks.registration.ownership import owner_of as owner_of
from kedro_prefect_hooks.registration.plan import FINGERPRINT_LABEL, DesiredDeployment

FIX_CLASH = (
    "to share the server, give this env or checkout its own names (e.g. names.deployment: "
    "'{pipeline}-{env}'); to make them this one's, `kedro prefect register --take-over`"
)


@dataclass(frozen=True)
class Change:
    full_name: str  # "<flow>/<deployment>"
    action: str  # create | update | unchanged | clash | prune
    deployment: DesiredDeployment | None = None  # None for prune
    differs: tuple[str, ...] = ()
    owner: str | None = None  # the other owner of a clash
    current: dict[str, Any] | None = None  # what the server holds

    def describe(self) -> str:
        if self.action == "clash":
            return f"{self.full_name} belongs to {self.owner}: not written"
        detail = f" ({', '.join(self.differs)} differ)" if self.differs else ""
        return f"{self.action:9s} {self.full_name}{detail}"


def compare(
    desired: list[DesiredDeployment],
    existing: dict[tuple[str, str], dict[str, Any]],
    owner: str,
    project: KedroProject,
    take_over: bool = False,
) -> list[Change]:
    """One Change per desired deployment: create, update, unchanged, or clash with another owner."""
    changes = []
    for deployment in desired:
        current = existing.get((deployment.flow_name, deployment.name))
        if current is None:
            changes.append(Change(deployment.full_name, "create", deployment))
            continue
        if not take_over and not is_ours(current, owner, project):
            their_owner = owner_of(current, project)
            changes.append(
                Change(deployment.full_name, "clash", deployment, owner=their_owner, current=current)
            )
        elif (current.get("labels") or {}).get(FINGERPRINT_LABEL) == deployment.fingerprint:
            changes.append(Change(deployment.full_name, "unchanged", deployment, current=current))
        else:
            differs = differences(deployment.body, current)
            changes.append(Change(deployment.full_name, "update", deployment, differs, current=current))
    return changes


def differences(body: dict[str, Any], current: dict[str, Any]) -> tuple[str, ...]:
    """The fields of the desired body that the server's deployment does not match."""

    def normal(key: str, value: Any) -> Any:
        if key == "tags":
            return sorted(value or [])
        if key == "labels":  # the server adds its own (prefect.flow.id)
            return {
                k: v
                for k, v in (value or {}).items()
                if k not in (FINGERPRINT_LABEL, CHECKOUT_LABEL) and not k.startswith("prefect.")
            }
        if key == "schedules":
            return [(s["schedule"], s.get("active", True)) for s in value or []]
        if key == "work_queue_name":
            return value or "default"
        if key == "concurrency_options":
            return (value or {}).get("collision_strategy")
        return value

    # The API answers concurrency_limit as null and the limit under global_concurrency_limit.
    current = {**current, "concurrency_limit": (current.get("global_concurrency_limit") or {}).get("limit")}
    skipped = {"name", "version"}
    differs = tuple(k for k in body if k not in skipped and normal(k, body[k]) != normal(k, current.get(k)))
    return differs or ("plugin version",)
