"""What `kedro prefect register --dry-run` shows: what registering would change, writing nothing."""

from __future__ import annotations

from typing import Any

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.prefect_api.client import command_client
from kedro_prefect_hooks.prefect_api.settings import ApiSettings
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.automations import crash_detection
from kedro_prefect_hooks.registration.compare import Change, compare
from kedro_prefect_hooks.registration.ownership import is_ours
from kedro_prefect_hooks.registration.plan import (
    bookkeeping_variable,
    desired_deployments,
    owner,
    ownership_tags,
)
from kedro_prefect_hooks.registration.tag_limits import (
    TagLimitChange,
    recorded_tag_limits,
    tag_limit_changes,
    wanted_tag_limits,
)


def preview(
    config: PrefectConfig,
    project: KedroProject,
    pipelines: list[str],
    api: ApiSettings,
    take_over: bool = False,
    parameters: dict[str, dict[str, Any]] | None = None,
    asset_keys: dict[str, str] | None = None,
    prune: bool | None = None,
) -> list[Change | TagLimitChange]:
    """What `register` would do, deployment by deployment, then tag limit by tag limit, writing nothing."""
    heartbeats = crash_detection(config, api)
    desired = desired_deployments(config, project, pipelines, heartbeats, parameters, asset_keys)
    limits = wanted_tag_limits(config, pipelines)
    ours = owner(config, project)
    client = command_client(api, config.timeout)
    existing = client.deployments_named(
        sorted({d.flow_name for d in desired}), sorted({d.name for d in desired})
    )
    changes: list[Change | TagLimitChange] = list(compare(desired, existing, ours, project, take_over))
    if config.prune if prune is None else prune:
        wanted = {d.name for d in desired}
        changes += [
            Change(d["name"], "prune", current=d)
            for d in client.deployments_tagged(ownership_tags(project))
            if d["name"] not in wanted and is_ours(d, ours, project)
        ]
    recorded = recorded_tag_limits(client.variable(bookkeeping_variable(project)))
    return changes + tag_limit_changes(client, limits, recorded)
