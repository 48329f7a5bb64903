"""`kedro prefect ...`: the plugin's commands, listed only inside a Kedro project."""

from __future__ import annotations

from pathlib import Path

import click

from kedro_prefect_hooks.cli_local import server, worker
from kedro_prefect_hooks.cli_support import ENV_OPTION, context_and_api, plain_env
from kedro_prefect_hooks.run_options import FILTERS


@click.group(name="kedro-prefect-hooks")
def commands() -> None:
    pass


@commands.group(name="prefect")
def prefect() -> None:
    """Prefect commands of kedro-prefect-hooks."""


prefect.add_command(worker)
prefect.add_command(server)


def _selected(entry, names: tuple[str, ...]) -> list[str]:
    """The pipelines to act on: those named, each selected in prefect.yml, else every selected one."""
    from kedro_prefect_hooks.config import ConfigError

    try:
        selected = entry.selected_pipelines()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # the registry's own error (find_pipelines(raise_errors=True)): one line
        cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
        raise click.ClickException(
            f"loading the pipelines failed: {type(exc).__name__}: {exc}{cause}"
        ) from None
    unknown = [n for n in names if n not in selected]
    if unknown:
        raise click.ClickException(
            f"pipeline(s) {unknown} are not selected in prefect.yml; selected: {selected}"
        )
    return list(names) or selected


def _asset_keys(entry, selected: list[str]) -> dict[str, str]:
    """The asset keys `after_datasets` names, from the project's catalog (built only if needed)."""
    from kedro_prefect_hooks.registration.plan import after_dataset_keys

    config = entry.settings
    if not any(config.deployments[p].after_datasets for p in selected if p in config.deployments):
        return {}  # no catalog
    return after_dataset_keys(config, entry.project, selected, entry.catalog, entry.pipelines().outputs)


@prefect.command()
@click.option(
    "--env", "-e", default="base", show_default=True, callback=plain_env, help="conf/<env> to write into."
)
@click.option("--force", is_flag=True, help="Overwrite an existing prefect.yml.")
@click.pass_obj
def init(metadata, env: str, force: bool) -> None:
    """Write a commented conf/<env>/prefect.yml for this project.

    \b
    Examples:
      kedro prefect init
      kedro prefect init --env local --force
    """
    from importlib.resources import files

    from kedro.framework.project import settings

    from kedro_prefect_hooks import PrefectHook

    target = Path(metadata.project_path) / settings.CONF_SOURCE / env / "prefect.yml"
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; use --force to overwrite it.")
    template = files("kedro_prefect_hooks").joinpath("templates/prefect.yml").read_text()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(template.format(project_name=metadata.project_name))
    click.echo(f"Wrote {target}")
    if not any(isinstance(hook, PrefectHook) for hook in getattr(settings, "HOOKS", ())):
        click.echo(
            f"Enable the hook in src/{metadata.package_name}/settings.py:\n\n"
            "    from kedro_prefect_hooks import PrefectHook\n\n    HOOKS = (PrefectHook(),)\n"
        )


@prefect.command()
@ENV_OPTION
@click.option("--pipeline", "-p", "pipelines", multiple=True, help="Only this pipeline (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option(
    "--take-over",
    is_flag=True,
    help="Also write deployments another env or checkout registered under these names.",
)
@click.pass_obj
def register(metadata, env: str | None, pipelines: tuple[str, ...], dry_run: bool, take_over: bool) -> None:
    """Register the selected pipelines now, as the hook does at session start.

    \b
    Examples:
      kedro prefect register
      kedro prefect register --env prod --pipeline data_science --dry-run
      kedro prefect register --env prod --take-over
    """
    from kedro_prefect_hooks.config import ConfigError
    from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
    from kedro_prefect_hooks.registration.apply import register as apply
    from kedro_prefect_hooks.registration.preview import preview

    entry, api = context_and_api(metadata, env)
    config, project = entry.settings, entry.project
    selected = _selected(entry, pipelines)
    if problems := entry.load_problems():  # a background registration's next session repeats it
        click.echo(f"warning   {problems}")
    parameters = entry.parameters(selected)
    try:
        keys = _asset_keys(entry, selected)
        if dry_run:
            for change in preview(
                config, project, selected, api, take_over, parameters, keys, entry.may_prune
            ):
                click.echo(change.describe())
            click.echo(f"dry run: nothing written to {api.url}")
            return
        outcome = apply(
            config,
            project,
            selected,
            api,
            prune=entry.may_prune,
            retry_refused=True,
            take_over=take_over,
            parameters=parameters,
            asset_keys=keys,
        )
    except (ConfigError, PrefectApiError) as exc:
        raise click.ClickException(str(exc)) from None
    for name in outcome.written:
        click.echo(f"written   {name}")
    for name in outcome.unchanged:
        click.echo(f"unchanged {name}")
    for name in outcome.pruned:
        click.echo(f"pruned    {name}")
    for change in outcome.tag_limits:
        if change.action != "clash":  # said with the other clashes
            click.echo(change.describe())
    for line in outcome.clash_lines():
        click.echo(f"clash     {line}")


@prefect.command(name="list")
@ENV_OPTION
@click.pass_obj
def list_deployments(metadata, env: str | None) -> None:
    """The selected pipelines and their deployments: current?, schedule, pool, last run.

    \b
    Example:
      kedro prefect list --env local
    """
    from kedro_prefect_hooks.config import ConfigError
    from kedro_prefect_hooks.local.registrar import last_run
    from kedro_prefect_hooks.prefect_api.client import command_client
    from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
    from kedro_prefect_hooks.registration.automations import crash_detection
    from kedro_prefect_hooks.registration.compare import compare
    from kedro_prefect_hooks.registration.plan import desired_deployments, owner

    entry, api = context_and_api(metadata, env)
    config, project = entry.settings, entry.project
    if (background := last_run(project.path)) is not None:  # a session's, when its pipelines had changed
        click.echo(f"background registration: {background.describe()}")
    selected = _selected(entry, ())
    parameters = entry.parameters(selected)
    try:
        keys = _asset_keys(entry, selected)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    heartbeats = crash_detection(config, api)
    desired = desired_deployments(config, project, selected, heartbeats, parameters, keys)
    client = command_client(api, config.timeout)
    try:
        existing = {
            (d.flow_name, d.name): found
            for d in desired
            if (found := client.deployment_by_name(d.flow_name, d.name)) is not None
        }
        # the same judgement registering makes: whose it is, and whether it is current
        for change in compare(desired, existing, owner(config, project), project):
            found = change.current
            if found is None:
                click.echo(f"{change.full_name}: not registered")
                continue
            schedules = [s["schedule"] for s in found.get("schedules") or []]
            last = client.last_flow_run(found["id"])
            last_state = (
                f"{last['state']['type']} ({last['name']})" if last and last.get("state") else "never run"
            )
            click.echo(
                f"{change.full_name}: {LIST_STATUS[change.action] or f'registered by {change.owner}'}, "
                f"pool {found['work_pool_name']}, schedule {_schedule_text(schedules)}, last run {last_state}"
            )
    except PrefectApiError as exc:
        raise click.ClickException(str(exc)) from None


# What `list` says of each Change registering would make (a clash names the owner).
LIST_STATUS = {"unchanged": "current", "update": "outdated", "clash": None}


def _schedule_text(schedules: list[dict]) -> str:
    if not schedules:
        return "none"
    parts = []
    for schedule in schedules:
        kind = next((k for k in ("cron", "interval", "rrule") if schedule.get(k) is not None), "?")
        parts.append(f"{kind} {schedule.get(kind)} {schedule.get('timezone') or ''}".strip())
    return "; ".join(parts)


def _filter_options(command):
    """`kedro run`'s filters as options, from the one table (run_options.FILTERS), in its order."""
    for run_filter in reversed(FILTERS):
        name = "--" + run_filter.option.replace("_", "-")
        if run_filter.kind == "flag":
            command = click.option(name, is_flag=True, help=run_filter.help)(command)
        elif run_filter.kind == "names":
            help_text = f"{run_filter.help}, comma-separated, as `kedro run {name}`."
            command = click.option(name, default="", help=help_text)(command)
        else:
            command = click.option(name, default="", help=run_filter.help)(command)
    return command


@prefect.command()
@click.argument("pipeline")
@ENV_OPTION
@click.option("--params", default="", help="Runtime params, Kedro syntax: key=value,section.key=value")
@_filter_options
@click.option("--wait", is_flag=True, help="Follow the run to its end; exit 1 unless it completed.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds --wait follows it.")
@click.option(
    "--job-variable",
    "job_variables",
    multiple=True,
    help="For this run only: key=value, dotted keys nest (env.MY_VAR=1); repeatable.",
)
@click.pass_obj
def run(
    metadata,
    pipeline: str,
    env: str | None,
    params: str,
    wait: bool,
    timeout: float,
    job_variables: tuple[str, ...],
    **filters,
) -> None:
    """Trigger PIPELINE's deployment (the one this env registered); a worker for its pool runs it.

    \b
    Examples:
      kedro prefect run data_science
      kedro prefect run __default__ --params model.test_size=0.3 --wait
      kedro prefect run __default__ --from-nodes train_model --wait
      kedro prefect run training --job-variable memory=16Gi --job-variable env.BATCH=64
    """
    from kedro_prefect_hooks.trigger.selection import given_options
    from kedro_prefect_hooks.trigger.start import RunRequest, run_pipeline

    entry, api = context_and_api(metadata, env)
    _selected(entry, (pipeline,))  # refuses a pipeline prefect.yml does not select
    given = given_options(click.get_current_context())
    request = RunRequest(pipeline, env, params, wait, timeout, job_variables, filters, given)
    run_pipeline(entry.settings, api, entry.project, request)
