"""`kedro prefect run`: trigger the deployment this env registered, with `kedro run`'s options.

The command's click declaration is in cli.py; what it does is here: the flow
parameters from the options, the deployment (refused when another env or project
registered it under this name), the plan `--wait` counts against, and the follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click


def parse_params(text: str, param_hint: str = "--params") -> dict:
    """Kedro's `--params` syntax: `a=1,b.c=x` -> {"a": 1, "b": {"c": "x"}}.

    Values are read as YAML scalars (numbers, booleans); as with `kedro run --params`,
    a value cannot hold a comma.
    """
    import yaml

    params: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not key=value", param_hint=param_hint)
        *parents, leaf = key.strip().split(".")
        target = params
        for parent in parents:
            target = target.setdefault(parent, {})
        try:
            target[leaf] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise click.BadParameter(f"cannot read the value of {item!r}", param_hint=param_hint) from None
    return params


def parse_job_variables(items: tuple[str, ...]) -> dict:
    """`--job-variable` values: key=value, dotted keys nest; `env` values stay strings, as the job needs."""
    variables = parse_params(",".join(items), param_hint="--job-variable") if items else {}
    if isinstance(variables.get("env"), dict):
        variables["env"] = {k: str(v) for k, v in variables["env"].items()}
    return variables


def not_this_envs(found: dict[str, Any], project: Any, full_name: str) -> str | None:
    """Why the deployment found under this env's name must not be triggered for it, or None.

    With the default name template every env computes the same deployment names; the one
    on the server is this env's only if it carries this project's and env's tags.
    """
    from kedro_prefect_hooks.registration.compare import owner_of
    from kedro_prefect_hooks.registration.plan import ownership_tags

    ours, tags = set(ownership_tags(project)), set(found.get("tags") or [])
    if ours <= tags:
        return None
    env = project.run_env
    fix = (
        f"Give each env its own deployment names, e.g. `names: {{deployment: '{{pipeline}}-{{env}}'}}` "
        f"in conf/base/prefect.yml, then `kedro prefect register -e {env}`"
    )
    if {t for t in ours if not t.startswith("kedro-env:")} <= tags:  # this project, another env
        their_env = next((t.split(":", 1)[1] for t in sorted(tags) if t.startswith("kedro-env:")), "unknown")
        return (
            f"{full_name} was registered by env {their_env} of this project (tag kedro-env:{their_env}), "
            f"not by env {env}: its runs read env {their_env}'s config. {fix}; or trigger env "
            f"{their_env}'s with `-e {their_env}`. No run was created."
        )
    return (
        f"{full_name} was registered by {owner_of(found, project)}, not by env {env} of this project. "
        f"{fix}. No run was created."
    )


@dataclass(frozen=True)
class RunRequest:
    """What `kedro prefect run` was asked, as typed (the options are parsed here)."""

    pipeline: str
    env: str | None
    params: str  # Kedro's --params text
    wait: bool
    timeout: float  # seconds --wait follows the run
    job_variables: tuple[str, ...]  # --job-variable key=value items
    filters: dict[str, Any]  # run_options.FILTERS' options, as click gives them
    given: list[tuple[str, str]]  # the options typed, for the resume command


def run_pipeline(config: Any, api: Any, project: Any, request: RunRequest) -> None:
    """Trigger `pipeline`'s deployment (as this env names it); with `wait`, follow it to its
    end: a click error unless it completed."""
    from kedro_prefect_hooks.prefect_api.client import command_client
    from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
    from kedro_prefect_hooks.prefect_api.settings import ui_url
    from kedro_prefect_hooks.project import project_catalog
    from kedro_prefect_hooks.registration.plan import deployment_names
    from kedro_prefect_hooks.run.report import artifact_key
    from kedro_prefect_hooks.run_options import filter_parameters, resume_command
    from kedro_prefect_hooks.trigger.selection import load_plan, plan_problem
    from kedro_prefect_hooks.trigger.watch import start_hint, wait_and_report

    pipeline, env, wait = request.pipeline, request.env, request.wait
    flow_name, deployment_name = deployment_names(config, project, pipeline)
    full_name = f"{flow_name}/{deployment_name}"
    try:
        parameters = filter_parameters(request.filters)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--load-versions") from None
    filtered = bool(parameters)
    if request.params:
        parameters["params"] = parse_params(request.params)
    client = command_client(api, config.timeout)
    try:
        found = client.deployment_by_name(flow_name, deployment_name)
        if found is None:
            raise click.ClickException(
                f"{full_name} is not registered at {api.url}: run `kedro prefect register"
                + (f" -e {env}`." if env else "`.")
            )
        if problem := not_this_envs(found, project, full_name):
            raise click.ClickException(problem)
        # Counted for --wait, checked when filtered; the deployment's presets apply under the run's own.
        effective = {**(found.get("parameters") or {}), **parameters}
        grouping = config.options_for(pipeline).run.grouping
        try:
            plan = (
                load_plan(
                    pipeline,
                    effective,
                    grouping,
                    lambda: project_catalog(project.path, effective.get("env"), effective.get("params")),
                )
                if wait or filtered
                else None
            )
        except ValueError as exc:
            raise click.ClickException(plan_problem(pipeline, exc, filtered)) from None
        flow_run = client.create_flow_run(found["id"], parameters, parse_job_variables(request.job_variables))
        click.echo(f"Triggered {full_name}: flow run '{flow_run['name']}' {ui_url(api.url, flow_run['id'])}")
        if plan is not None and wait:
            pool = found.get("work_pool_name") or config.work_pool.name
            wait_and_report(
                client,
                flow_run["id"],
                full_name,
                plan,
                pool,
                start_hint(pool, config.work_pool.name, env),
                request.timeout,
                lambda nodes: resume_command(pipeline, request.given, nodes),
                artifact_key(pipeline),
            )
    except PrefectApiError as exc:
        raise click.ClickException(str(exc)) from None
