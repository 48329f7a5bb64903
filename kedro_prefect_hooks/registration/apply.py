"""Bring the Prefect server to the desired deployments: the only code that writes to the API.

Nothing changed (the usual session): two requests, the bookkeeping variable and a
count. Otherwise: one look at the deployments by name, then only the deployments
whose fingerprint changed are written, never one another owner registered, and
prefect is imported only if something is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.prefect_api.client import PrefectApi, command_client
from kedro_prefect_hooks.prefect_api.errors import ApiRefused, OutOfTime, PrefectApiError
from kedro_prefect_hooks.prefect_api.settings import ApiSettings
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.automations import (
    crash_detection,
    keep_crash_automation,
    reconcile_chains,
)
from kedro_prefect_hooks.registration.compare import FIX_CLASH, Change, compare
from kedro_prefect_hooks.registration.ownership import CHECKOUT_LABEL, checkout, is_ours
from kedro_prefect_hooks.registration.plan import (
    MANAGED_TAG,
    DesiredDeployment,
    bookkeeping_variable,
    desired_deployments,
    owner,
    ownership_tags,
    set_fingerprint,
)
from kedro_prefect_hooks.registration.prefect_import import prefect_facts
from kedro_prefect_hooks.registration.refusals import RefusalRecord, is_definitive
from kedro_prefect_hooks.registration.tag_limits import (
    WRITES,
    TagLimitChange,
    keep_tag_limits,
    recorded_tag_limits,
    wanted_tag_limits,
)

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    clashes: list[Change] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    created_work_pools: list[str] = field(default_factory=list)
    created_automation: str | None = None
    chains: list[str] = field(default_factory=list)  # deployment triggers (re)created
    tag_limits: list[TagLimitChange] = field(default_factory=list)  # written, and clashes left alone
    ids: dict[str, str] = field(default_factory=dict)  # "<flow>/<name>" -> id, of this owner's deployments
    compared: bool = False  # the server's deployments were read: from here on, writes may happen

    def summary(self) -> str:
        """One line on what was written; empty when nothing was."""
        parts = []
        if self.written:
            parts.append(f"registered {', '.join(self.written)}")
        if self.pruned:
            parts.append(f"pruned {', '.join(self.pruned)}")
        if self.created_work_pools:
            parts.append(f"created process work pool(s) {', '.join(self.created_work_pools)}")
        if self.created_automation:
            parts.append(f"created automation '{self.created_automation}'")
        if self.chains:
            parts.append(f"created trigger(s) {'; '.join(self.chains)}")
        parts += [" ".join(c.describe().split()) for c in self.tag_limits if c.action in WRITES]
        return "; ".join(parts)

    def clash_lines(self) -> list[str]:
        """One line per deployment left alone because another owner registered it."""
        return [f"{c.describe()}; {FIX_CLASH}" for c in self.clashes] + [
            c.describe() for c in self.tag_limits if c.action == "clash"
        ]


class PartialRegistration(PrefectApiError):
    """Some deployments were written and the server refused others; the message names each."""


class RefusedBefore(PrefectApiError):
    """Nothing sent: the server refused this very configuration in an earlier session."""


class RegistrationStopped(PrefectApiError):
    """The API failed or answered too slowly partway; the message says what was and was not written."""


def register(
    config: PrefectConfig,
    project: KedroProject,
    pipelines: list[str],
    api: ApiSettings,
    prune: bool | None = None,
    retry_refused: bool = False,
    take_over: bool = False,
    parameters: dict[str, dict[str, Any]] | None = None,
    budget: float | None = None,
    asset_keys: dict[str, str] | None = None,
) -> Outcome:
    """Write the selected pipelines' deployments that changed; prune the deselected ones if asked.

    The plan is built (and any config error raised) before the first request. A set
    the server refused is not sent again by later sessions until it changes, or
    `retry_refused` (the `kedro prefect register` command) asks for it. Deployments
    another owner registered are left alone unless `take_over`. With a `budget` (a
    session's), the API may cost at most that many seconds more than a healthy server
    takes: past it, or when the API fails partway, RegistrationStopped says what was done.
    """
    prune = config.prune if prune is None else prune
    heartbeats = crash_detection(config, api)
    desired = desired_deployments(config, project, pipelines, heartbeats, parameters, asset_keys)
    limits = wanted_tag_limits(config, pipelines)
    client = (
        PrefectApi(api, config.timeout, budget) if budget is not None else command_client(api, config.timeout)
    )
    outcome = Outcome()
    try:
        return _register(
            config, project, desired, limits, client, outcome, prune, retry_refused, take_over, heartbeats
        )
    except (PartialRegistration, RefusedBefore):
        raise
    except PrefectApiError as exc:
        wrote = outcome.written or outcome.created_work_pools or outcome.created_automation
        if wrote or isinstance(exc, OutOfTime):
            raise _stopped(desired, outcome, exc) from None
        raise  # nothing written: "nothing registered" and the cause say it all


def _register(
    config: PrefectConfig,
    project: KedroProject,
    desired: list[DesiredDeployment],
    limits: dict[str, int],
    client: PrefectApi,
    outcome: Outcome,
    prune: bool,
    retry_refused: bool,
    take_over: bool,
    heartbeats: bool,
) -> Outcome:
    ours = owner(config, project)
    record_name = bookkeeping_variable(project)
    state = set_fingerprint(desired)
    bookkeeping = {"fingerprint": state, "owner": ours, "prune": prune}
    if limits:  # absent when none, so that earlier records stay current
        bookkeeping["concurrency"] = limits
    recorded = client.variable(record_name)
    if not take_over and _current(client, recorded, bookkeeping, desired, project):
        outcome.unchanged = [d.full_name for d in desired]
        return outcome
    refusals = RefusalRecord(project.path, client.settings.url)
    if not retry_refused and (refused := refusals.earlier(state)):
        raise RefusedBefore(
            f"nothing sent: the server refused this same configuration before ({refused}). "
            "Fix prefect.yml, or send it again with `kedro prefect register`."
        )

    existing = client.deployments_named(
        sorted({d.flow_name for d in desired}), sorted({d.name for d in desired})
    )
    changes = compare(desired, existing, ours, project, take_over)
    outcome.compared = True
    outcome.unchanged = [c.full_name for c in changes if c.action == "unchanged"]
    outcome.clashes = [c for c in changes if c.action == "clash"]
    outcome.ids = {c.full_name: c.current["id"] for c in changes if c.current and c.action == "unchanged"}
    to_write = [c.deployment for c in changes if c.action in ("create", "update") and c.deployment]
    failed = _write(project, config, client, to_write, outcome, heartbeats) if to_write else {}
    if failed:
        refusals.remember(state, "; ".join(f"{n}: {why}" for n, why in failed.items()))
        raise PartialRegistration(
            f"registered {', '.join(outcome.written) or 'nothing'}; the server at {client.settings.url} "
            "refused " + "; ".join(f"{name} ({why})" for name, why in failed.items())
        )
    refusals.forget()
    outcome.chains = reconcile_chains(client, desired, outcome.ids, ownership_tags(project))
    outcome.tag_limits = keep_tag_limits(client, limits, recorded_tag_limits(recorded))
    if prune:
        outcome.pruned = _prune(client, desired, project, ours)
    if not outcome.clash_lines():
        client.set_variable(record_name, bookkeeping, [MANAGED_TAG])
    return outcome


def _stopped(desired: list[DesiredDeployment], outcome: Outcome, exc: PrefectApiError) -> RegistrationStopped:
    """What a registration cut short did and did not do, and how it gets finished."""
    register_now = (
        " (`kedro prefect register` waits as long as the server needs)" if isinstance(exc, OutOfTime) else ""
    )
    if not outcome.compared:
        return RegistrationStopped(f"nothing registered: {exc}; the next session tries again{register_now}")
    finished = set(outcome.written) | set(outcome.unchanged) | {c.full_name for c in outcome.clashes}
    missing = [d.full_name for d in desired if d.full_name not in finished]
    done = f"registered {_some(outcome.written)}" if outcome.written else "nothing written"
    left = f"not written: {_some(missing)}" if missing else "triggers, pruning and bookkeeping not done"
    return RegistrationStopped(f"{done}; {left}; {exc}; the next session writes the rest{register_now}")


def _some(names: list[str], shown: int = 5) -> str:
    """A few names, and how many more: a first registration may have hundreds."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _current(
    client: PrefectApi,
    recorded: Any,
    bookkeeping: dict[str, Any],
    desired: list[DesiredDeployment],
    project: KedroProject,
) -> bool:
    """The fast path: the variable holds this very set, and every deployment of it is there."""
    if recorded != bookkeeping:
        return False
    owned = ownership_tags(project)
    present = client.count_deployments(
        owned, sorted({d.flow_name for d in desired}), sorted({d.name for d in desired})
    )
    if present != len(desired):
        return False
    return not bookkeeping["prune"] or client.count_deployments(owned) == len(desired)


def _write(
    project: KedroProject,
    config: PrefectConfig,
    client: PrefectApi,
    deployments: list[DesiredDeployment],
    outcome: Outcome,
    heartbeats: bool,
) -> dict[str, str]:
    """Write `deployments` (pools and job variables checked first); returns the refused ones with why.

    Only a definitive refusal (a 4xx judging the body) is a refusal; any other failure stops
    the writes and is raised.
    """
    facts = prefect_facts()
    missing_pools = _check_pools(config, client, deployments, facts.process_pool_template)
    for pool in missing_pools:
        if client.create_process_pool(pool, facts.process_pool_template):
            outcome.created_work_pools.append(pool)
    outcome.created_automation = keep_crash_automation(client, heartbeats)
    flow_ids = {name: client.ensure_flow(name) for name in sorted({d.flow_name for d in deployments})}
    schema = facts.flow_parameter_schema
    failed: dict[str, str] = {}
    for deployment in deployments:
        body = {
            **deployment.body,
            "labels": {**deployment.body["labels"], CHECKOUT_LABEL: checkout(project)},
            "flow_id": flow_ids[deployment.flow_name],
            "parameter_openapi_schema": deployment.parameter_schema(schema),
        }
        try:
            written = client.upsert_deployment(body)
        except ApiRefused as exc:  # this deployment only: the others may still be written
            if not is_definitive(exc.status):
                raise
            failed[deployment.full_name] = exc.detail
            continue
        outcome.written.append(deployment.full_name)
        outcome.ids[deployment.full_name] = written["id"]
    return failed


def _check_pools(
    config: PrefectConfig,
    client: PrefectApi,
    deployments: list[DesiredDeployment],
    process_template: dict[str, Any],
) -> list[str]:
    """Check every job variable against its pool's base job template, before any write.

    A misspelt variable is a config error listing the ones the pool takes. Returns the
    pools that do not exist yet (created as process pools).
    """
    missing = []
    for pool_name in sorted({d.pool.name for d in deployments}):
        pool = client.work_pool(pool_name)
        if pool is None:
            missing.append(pool_name)
            template, pool_type = process_template, "process, to be created"
        else:
            template, pool_type = pool.get("base_job_template") or {}, pool.get("type", "?")
        allowed = set((template.get("variables") or {}).get("properties") or {})
        for deployment in (d for d in deployments if d.pool.name == pool_name):
            unknown = sorted(set(deployment.pool.job_variables) - allowed)
            if unknown and allowed:
                key = _job_variables_key(config, deployment)
                raise config.error(
                    key,
                    f"unknown job variable(s) {unknown} for work pool '{pool_name}' ({pool_type}); "
                    f"its base job template takes: {sorted(allowed)}",
                )
    return missing


def _job_variables_key(config: PrefectConfig, deployment: DesiredDeployment) -> str:
    """Where prefect.yml sets a deployment's job variables: for the error that names it."""
    override = config.deployments.get(deployment.pipeline)
    if deployment.node_tag is not None:
        tag = deployment.node_tag
        own = override and tag in override.run.node_tags and override.run.node_tags[tag].work_pool
        return f"{f'deployments.{deployment.pipeline}' if own else 'defaults'}.run.node_tags.{tag}.work_pool"
    if override and override.work_pool and override.work_pool.job_variables:
        return f"deployments.{deployment.pipeline}.work_pool.job_variables"
    return "work_pool.job_variables"


def _prune(
    client: PrefectApi, desired: list[DesiredDeployment], project: KedroProject, ours: str
) -> list[str]:
    """Delete this owner's deployments that are no longer selected."""
    wanted = {d.name for d in desired}
    pruned = []
    for deployment in client.deployments_tagged(ownership_tags(project)):
        if deployment["name"] not in wanted and is_ours(deployment, ours, project):
            client.delete_automations_owned_by(f"prefect.deployment.{deployment['id']}")
            client.delete_deployment(deployment["id"])
            pruned.append(deployment["name"])
    return pruned
