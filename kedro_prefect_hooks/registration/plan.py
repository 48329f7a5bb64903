"""From config and project to the deployments that should exist: pure, no I/O.

Each deployment carries two labels: its owner (project, env and who registers, see
ownership.py) and a fingerprint of its desired state, also its `version`. A session writes a deployment
only when its fingerprint changed, and never one another owner registered. The
whole set's fingerprint lives in one Prefect variable per project and env, so "nothing
changed" costs one read of it and one count of the deployments.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kedro_prefect_hooks.config import ConfigError, PrefectConfig, TaskOptions, WorkPool
from kedro_prefect_hooks.config.base import sanitise as sanitise
from kedro_prefect_hooks.config.work_pool import helper_name
from kedro_prefect_hooks.parameters_form import FIELD as FORM_FIELD
from kedro_prefect_hooks.parameters_form import parameters_schema
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.ownership import MANAGED_TAG as MANAGED_TAG
from kedro_prefect_hooks.registration.ownership import OWNER_LABEL, owner, ownership_tags
from kedro_prefect_hooks.registration.source import pull_steps
from kedro_prefect_hooks.version import __version__

FLOW_ENTRYPOINT = "kedro_prefect_hooks.flow.kedro_pipeline"
NODES_ENTRYPOINT = "kedro_prefect_hooks.flow.kedro_nodes"  # a node tag's child runs (helper deployments)
FINGERPRINT_LABEL = "kedro-prefect-hooks.fingerprint"
# Prefect's shortest heartbeat: with runs beating every 30 s, an automation can mark
# a run CRASHED after 90 s of silence without ever catching a healthy one.
HEARTBEAT_SECONDS = 30
HEARTBEAT_VARIABLE = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
# Only deployments whose runs beat every HEARTBEAT_SECONDS carry it; the crash automation
# judges only runs with it. Runs of other deployments beat every 180 s (Prefect's default).
HEARTBEAT_TAG = "kedro-prefect-hooks:heartbeat-30s"
# Prefect variable names: lowercase letters, digits, underscores and dashes, at most 255.
_NOT_IN_VARIABLE_NAMES = re.compile(r"[^a-z0-9_-]")
MAX_VARIABLE_NAME = 255


@dataclass(frozen=True)
class DesiredDeployment:
    pipeline: str
    flow_name: str
    name: str
    body: dict[str, Any]  # the API body, with its labels; less flow_id and parameter schema
    pool: WorkPool  # the pool and job variables, checked against the pool's template before writing
    fingerprint: str
    after: tuple[str, ...] = ()  # "<flow>/<deployment>" whose completed runs start this one
    form: dict[str, Any] | None = None  # the run form's `parameters` field; None: the flow's generic one
    after_assets: tuple[tuple[str, str], ...] = ()  # (dataset, asset key) whose materializations start it
    node_tag: str | None = None  # a helper: the child runs of the nodes carrying this tag

    def parameter_schema(self, flow_schema: dict[str, Any]) -> dict[str, Any]:
        """The flow's parameter schema with this pipeline's own parameters in the form."""
        if self.node_tag is not None:  # started by the parent run only; the flow checks its arguments
            return {"title": "Parameters", "type": "object", "properties": {}}
        if not self.form:
            return flow_schema
        properties = {**flow_schema.get("properties", {}), FORM_FIELD: self.form}
        return {**flow_schema, "properties": properties}

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def bookkeeping_variable(project: KedroProject) -> str:
    """The Prefect variable holding the set's fingerprint, under a name Prefect accepts.

    Package and env are lowercased and other characters become '-'; when that changed
    anything (env `Prod` next to `prod`) or the name is too long, a hash of the exact
    names keeps each project and env apart.
    """
    exact = f"kedro-prefect-hooks_{project.package}_{project.run_env}"
    name = _NOT_IN_VARIABLE_NAMES.sub("-", exact.lower())
    if name == exact and len(name) <= MAX_VARIABLE_NAME:
        return name
    digest = _hash(exact)[:12]
    return f"{name[: MAX_VARIABLE_NAME - len(digest) - 1]}-{digest}"


def desired_deployments(
    config: PrefectConfig,
    project: KedroProject,
    pipelines: list[str],
    heartbeats: bool = False,
    parameters: dict[str, dict[str, Any]] | None = None,
    asset_keys: dict[str, str] | None = None,
) -> list[DesiredDeployment]:
    """One deployment per selected pipeline, with its full desired state.

    `heartbeats`: runs send a heartbeat every HEARTBEAT_SECONDS (set in the job's
    environment, so any worker's runs do), for crash detection. `parameters`: each
    pipeline's own parameters with their current values, for the run form. `asset_keys`: the
    asset key of each dataset an `after_datasets` names (after_dataset_keys).
    """
    desired = []
    owned_by = owner(config, project)
    steps = pull_steps(config.source, project.path)
    for pipeline in pipelines:
        options = config.options_for(pipeline)
        pool = config.pool_for(pipeline)
        schedule = options.schedule
        flow_name, name = deployment_names(config, project, pipeline)
        job_variables, beats = _job_variables(pool.job_variables, heartbeats)
        after = tuple(
            "/".join(deployment_names(config, project, upstream)) for upstream in options.after or []
        )
        after_assets = tuple((name, (asset_keys or {})[name]) for name in options.after_datasets or [])
        body: dict[str, Any] = {
            "name": name,
            "entrypoint": FLOW_ENTRYPOINT,
            # The worker's process starts wherever the worker runs; these steps move it
            # into the project (cloning it first for a git source), where the flow bootstraps Kedro.
            "pull_steps": steps,
            "parameters": {
                "pipeline": pipeline,
                "env": project.env,
                **(options.parameters or {}),
            },
            "tags": list(
                dict.fromkeys([*ownership_tags(project), *([HEARTBEAT_TAG] * beats), *(options.tags or [])])
            ),
            "labels": {OWNER_LABEL: owned_by},
            "description": options.description
            or f"Kedro pipeline '{pipeline}' of project '{project.name}' (env {project.run_env}), registered "
            "by kedro-prefect-hooks; its labels record the owner and a fingerprint of this state.",
            "schedules": [{"schedule": schedule.to_api(), "active": schedule.active}] if schedule else [],
            "work_pool_name": pool.name,
            "work_queue_name": options.work_queue,
            "job_variables": job_variables,
            "concurrency_limit": options.concurrency_limit,
            "concurrency_options": {"collision_strategy": options.collision_strategy.upper()}
            if options.concurrency_limit
            else None,
            "paused": bool(options.paused),
            "enforce_parameter_schema": True,
        }
        values = (parameters or {}).get(pipeline)
        form = parameters_schema(values) if values else None
        state = _hash([__version__, flow_name, body, after, form, *([after_assets] if after_assets else [])])
        body["labels"][FINGERPRINT_LABEL] = state
        body["version"] = state
        desired.append(
            DesiredDeployment(pipeline, flow_name, name, body, pool, state, after, form, after_assets)
        )
        desired += node_tag_deployments(options.run.node_tags, pipeline, flow_name, body, heartbeats)
    _reject_name_clashes(config, desired)
    return desired


def node_tag_deployments(
    node_tags: dict[str, TaskOptions], pipeline: str, flow_name: str, parent: dict[str, Any], heartbeats: bool
) -> list[DesiredDeployment]:
    """A helper deployment per node tag with a `work_pool`: the parent's code and tags, the tag's
    pool and job variables, no schedule, no concurrency limit (children of several runs may run)."""
    helpers = []
    for tag, options in sorted(node_tags.items()):
        if options.work_pool is None:
            continue
        job_variables, _ = _job_variables(options.work_pool.job_variables, heartbeats)
        body = {
            **parent,
            "name": helper_name(parent["name"], tag),
            "entrypoint": NODES_ENTRYPOINT,
            "parameters": {"pipeline": pipeline, "env": parent["parameters"]["env"]},
            "labels": {OWNER_LABEL: parent["labels"][OWNER_LABEL]},
            "description": f"Child runs of the nodes tagged '{tag}' of Kedro pipeline '{pipeline}', "
            f"started by runs of {parent['name']} (kedro-prefect-hooks: run.node_tags.{tag}.work_pool).",
            "schedules": [],
            "work_pool_name": options.work_pool.name,
            "work_queue_name": None,
            "job_variables": job_variables,
            "concurrency_limit": None,
            "concurrency_options": None,
            "paused": False,
            "enforce_parameter_schema": False,
        }
        state = _hash([__version__, flow_name, body])
        body["labels"][FINGERPRINT_LABEL] = state
        body["version"] = state
        pool = options.work_pool
        helpers.append(DesiredDeployment(pipeline, flow_name, body["name"], body, pool, state, node_tag=tag))
    return helpers


class CatalogUnavailable(ConfigError):
    """`after_datasets` needs the catalog, which could not be built here (e.g. credentials)."""


def after_dataset_keys(
    config: PrefectConfig,
    project: KedroProject,
    pipelines: list[str],
    catalog: Callable[[], Any],
    outputs: dict[str, list[str]] | None = None,
) -> dict[str, str]:
    """The asset key of each dataset the selected pipelines' `after_datasets` name; `catalog`
    builds the project's catalog, only when a pipeline names one. A ConfigError names the key;
    with `outputs` (the datasets each pipeline writes) a trigger loop is one too."""
    from kedro_prefect_hooks.asset_keys import catalog_asset_keys

    # per pipeline only (defaults.after_datasets is refused): no merge of options in a session without it
    named = {
        p: list(options.after_datasets)
        for p, options in config.deployments.items()
        if p in pipelines and options.after_datasets
    }
    if not named:
        return {}
    try:
        built = catalog()
    except Exception as exc:
        raise CatalogUnavailable(
            f"`after_datasets` needs the project's catalog, which failed to load: {exc}"
        ) from None
    keys = {}
    for pipeline, names in named.items():
        try:
            keys.update(catalog_asset_keys(names, built, project.name, str(project.path)))
        except ValueError as exc:
            raise config.error(f"deployments.{pipeline}.after_datasets", str(exc)) from None
    _refuse_trigger_loops(config, pipelines, named, outputs or {})
    return keys


def _refuse_trigger_loops(
    config: PrefectConfig, pipelines: list[str], named: dict[str, list[str]], outputs: dict[str, list[str]]
) -> None:
    """A pipeline that (through others) writes a dataset it waits for would start itself forever;
    Prefect's own loop guard only covers flow-run events, not asset events."""
    import graphlib

    upstream = {p: set(config.options_for(p).after or []) for p in pipelines}
    for waiting, names in named.items():
        upstream[waiting] |= {p for p in pipelines if set(outputs.get(p, [])) & set(names)}
    try:
        graphlib.TopologicalSorter(upstream).prepare()
    except graphlib.CycleError as exc:
        raise config.error(
            "deployments",
            f"`after_datasets` makes a loop ({' -> '.join(exc.args[1])}): a pipeline would start "
            "again each time it (or one it starts) writes a dataset it waits for",
        ) from None


def deployment_names(config: PrefectConfig, project: KedroProject, pipeline: str) -> tuple[str, str]:
    """(flow name, deployment name) of a pipeline, from the name templates."""
    fields = {"project": project.name, "pipeline": pipeline, "env": project.run_env}
    return sanitise(config.names.flow.format(**fields)), sanitise(config.names.deployment.format(**fields))


def _job_variables(configured: dict[str, Any], heartbeats: bool) -> tuple[dict[str, Any], bool]:
    """(the pool's job variables, whether runs beat every HEARTBEAT_SECONDS).

    With heartbeats, the frequency joins `env` unless the user set it; a frequency of the
    user's that is slower leaves the runs unjudged (the automation would catch healthy ones).
    """
    if not heartbeats:
        return configured, False
    env = {HEARTBEAT_VARIABLE: str(HEARTBEAT_SECONDS), **(configured.get("env") or {})}
    try:
        beats = float(env[HEARTBEAT_VARIABLE] or "inf") <= HEARTBEAT_SECONDS
    except ValueError:
        beats = False
    return {**configured, "env": env}, beats


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


def set_fingerprint(desired: list[DesiredDeployment]) -> str:
    """One hash of every deployment's own fingerprint: what the bookkeeping variable holds."""
    return _hash(sorted((d.flow_name, d.name, d.fingerprint) for d in desired))


def _hash(state: Any) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]
