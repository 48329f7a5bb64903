"""`kedro prefect ...`: the plugin's commands, listed only inside a Kedro project."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import click


def plain_env(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A Kedro env is a folder directly under conf/: `../x`, `a/b`, `.` or "" would reach elsewhere."""
    if value is None:
        return None
    if value in ("", ".", "..") or any(sep in value for sep in ("/", "\\", "\0")) or value != value.strip():
        raise click.BadParameter(
            f"{value!r} is not a Kedro env: give a plain folder name under conf/, such as local or prod",
            ctx=ctx,
            param=param,
        )
    return value


ENV_OPTION = click.option(
    "--env",
    "-e",
    default=None,
    envvar="KEDRO_ENV",
    callback=plain_env,
    help="Kedro env whose prefect.yml to read (default: KEDRO_ENV, else Kedro's default run env).",
)


@click.group(name="kedro-prefect-hooks")
def commands() -> None:
    pass


@commands.group(name="prefect")
def prefect() -> None:
    """Prefect commands of kedro-prefect-hooks."""


@prefect.group()
def worker() -> None:
    """The process worker that runs this project's deployments.

    \b
    Examples:
      kedro prefect worker start      # in the foreground, Ctrl-C stops it
      kedro prefect worker status
      kedro prefect worker stop       # the one `worker: {start: true}` started
    """


@prefect.group()
def server() -> None:
    """A local Prefect server for this project (SQLite, 127.0.0.1, no Docker).

    \b
    Examples:
      kedro prefect server start      # in the background; prints the UI URL
      kedro prefect server status
      kedro prefect server stop       # stops this project's worker first
    """


def _project(metadata) -> tuple[Path, str]:
    return Path(metadata.project_path), metadata.package_name


def _config(metadata, env: str | None, required: bool = True):
    """The project's config and config loader, or a one-line error naming the fix.

    Worker commands pass `required=False`: without prefect.yml they serve the default pool.
    """
    from kedro_prefect_hooks.config import ConfigError, PrefectConfig
    from kedro_prefect_hooks.config.loader import load_config
    from kedro_prefect_hooks.project import project_config_loader

    project_path, _ = _project(metadata)
    try:
        loader = project_config_loader(project_path, env)
        config = load_config(loader)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if config is None and required:
        raise click.ClickException(
            f"No prefect.yml in {project_path / 'conf'}: run `kedro prefect init` first."
        )
    return config or PrefectConfig(), loader


def _config_and_api(metadata, env: str | None, required: bool = True):
    """The project's config, API and config loader, or a one-line error naming the fix."""
    from kedro_prefect_hooks.hooks import find_api
    from kedro_prefect_hooks.registration.connection import PrefectApiError

    config, loader = _config(metadata, env, required)
    try:
        return config, find_api(config, _project(metadata)[0]), loader
    except PrefectApiError as exc:
        raise click.ClickException(str(exc)) from None


@worker.command("start")
@ENV_OPTION
@click.pass_obj
def worker_start(metadata, env: str | None) -> None:
    """Run a process worker for the configured work pool in the foreground.

    \b
    Example:
      kedro prefect worker start --env local
    """
    from kedro_prefect_hooks.local.processes import (
        Record,
        file_lock,
        is_running,
        read_record,
        sigint_reset,
        write_record,
    )
    from kedro_prefect_hooks.local.worker import record_path, worker_command, worker_env, worker_name

    project_path, package = _project(metadata)
    config, api, _ = _config_and_api(metadata, env, required=False)
    pool = config.work_pool.name
    path = record_path(project_path, pool)
    with file_lock(path.with_suffix(".lock")):  # the hook takes it too before starting one
        if is_running(running := read_record(path)):
            raise click.ClickException(
                f"A worker for pool '{pool}' already runs (pid {running.pid}); "
                "stop it first with `kedro prefect worker stop`."
            )
        click.echo(f"Worker for pool '{pool}' at {api.url}; Ctrl-C stops it.")
        process = subprocess.Popen(
            worker_command(package, pool, config.worker),
            cwd=project_path,
            env=worker_env(api, config.worker),
            preexec_fn=sigint_reset(),  # Ctrl-C and `kedro prefect worker stop` must reach it
        )
        write_record(
            path, Record(pid=process.pid, marker=worker_name(package, pool), log="(terminal)", url=api.url)
        )
    stopped = []

    def stop_on_request(*_: object) -> None:
        # A service manager stops us with SIGTERM: pass it on as the Ctrl-C the worker handles best.
        stopped.append(True)
        process.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, stop_on_request)
    try:
        process.wait()
    except KeyboardInterrupt:  # the worker got the terminal's SIGINT too
        stopped.append(True)
        process.wait()
    finally:
        path.unlink(missing_ok=True)
    # Stopped by a signal (here, or `kedro prefect worker stop` on the worker itself) is a clean end.
    signalled = {-signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGINT}
    if process.returncode != 0 and not stopped and process.returncode not in signalled:
        raise click.ClickException(f"the worker for pool '{pool}' exited with code {process.returncode}")


@worker.command("status")
@ENV_OPTION
@click.pass_obj
def worker_status(metadata, env: str | None) -> None:
    """This project's worker process, and the pool's workers as Prefect sees them.

    The process status needs no API: without one, a line says why it could not be asked.

    \b
    Example:
      kedro prefect worker status
    """
    from kedro_prefect_hooks.hooks import find_api
    from kedro_prefect_hooks.local.worker import running_workers
    from kedro_prefect_hooks.registration.api import PrefectApi
    from kedro_prefect_hooks.registration.connection import PrefectApiError

    project_path, _ = _project(metadata)
    config, _ = _config(metadata, env, required=False)
    pool = config.work_pool.name
    mine = running_workers(project_path).get(pool)
    click.echo(
        f"this project's worker for pool '{pool}': "
        + (f"running, pid {mine.pid}, log {mine.log}" if mine else "not running")
    )
    try:
        api = find_api(config, project_path)
        seen = PrefectApi(api, timeout=config.timeout).pool_workers(pool)
    except PrefectApiError as exc:
        click.echo(f"  could not ask the Prefect API for the pool's workers: {exc}")
        return
    for entry in seen:
        click.echo(
            f"  {entry['name']}: {entry.get('status')}, last heartbeat {entry.get('last_heartbeat_time')}"
        )
    if not seen:
        click.echo(f"  Prefect knows no worker for pool '{pool}' at {api.url}")


@worker.command("stop")
@ENV_OPTION
@click.option(
    "--timeout", default=15.0, show_default=True, help="Seconds before SIGKILL (SIGTERM at half of it)."
)
@click.pass_obj
def worker_stop(metadata, env: str | None, timeout: float) -> None:
    """Stop the worker this project started (by its recorded pid): SIGINT, SIGTERM, then SIGKILL.

    \b
    Example:
      kedro prefect worker stop --timeout 30
    """
    from kedro_prefect_hooks.config import ConfigError
    from kedro_prefect_hooks.hooks import find_api
    from kedro_prefect_hooks.local.worker import stop_worker
    from kedro_prefect_hooks.project import load_project_config
    from kedro_prefect_hooks.registration.api import PrefectApi
    from kedro_prefect_hooks.registration.connection import PrefectApiError

    project_path, _ = _project(metadata)
    try:
        config = load_project_config(project_path, env)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        client = PrefectApi(find_api(config, project_path), timeout=config.timeout)
    except PrefectApiError:
        client = None  # no API to tell: the process is stopped all the same
    pool = config.work_pool.name
    click.echo(f"worker for pool '{pool}': {stop_worker(project_path, pool, timeout, client)}")


@server.command("start")
@click.option("--port", type=int, default=None, help="Default: 4200 when free, else any free port.")
@click.pass_obj
def server_start(metadata, port: int | None) -> None:
    """Start this project's local Prefect server in the background (takes 10-20 s).

    It also writes <project>/prefect.toml, so that the prefect CLI run in the project
    uses this server (a prefect.toml of yours is left alone: the command prints the
    `export PREFECT_API_URL=...` line instead).

    \b
    Example:
      kedro prefect server start --port 4300
    """
    from kedro_prefect_hooks.local.prefect_toml import start_lines
    from kedro_prefect_hooks.local.server import start_local_server

    project_path, _ = _project(metadata)
    click.echo("Starting a local Prefect server...")
    try:
        record, started = start_local_server(project_path, port)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    ui = record.url.removesuffix("/api")
    click.echo(
        ("Started" if started else "Already running") + f": UI {ui}, API {record.url} (pid {record.pid})"
    )
    click.echo(f"Log: {record.log}")
    for line in start_lines(project_path, record.url):
        click.echo(line)


@server.command("status")
@click.pass_obj
def server_status(metadata) -> None:
    """Whether this project's local server runs, and where.

    \b
    Example:
      kedro prefect server status
    """
    from kedro_prefect_hooks.local.server import is_healthy, local_server

    project_path, _ = _project(metadata)
    record = local_server(project_path)
    if record is None:
        click.echo("local server: not running (start it with `kedro prefect server start`)")
        return
    health = "healthy" if is_healthy(record.url) else "not answering yet"
    click.echo(
        f"local server: running, {health}, UI {record.url.removesuffix('/api')}, pid {record.pid}, "
        f"log {record.log}"
    )


@server.command("stop")
@click.pass_obj
def server_stop(metadata) -> None:
    """Stop this project's workers, then its local server, and remove the prefect.toml it wrote.

    \b
    Example:
      kedro prefect server stop
    """
    from kedro_prefect_hooks.local.prefect_toml import remove_ours
    from kedro_prefect_hooks.local.server import stop_local_server
    from kedro_prefect_hooks.local.worker import running_workers, stop_worker

    project_path, _ = _project(metadata)
    for pool in running_workers(project_path):
        click.echo(f"worker for pool '{pool}': {stop_worker(project_path, pool)}")
    click.echo(f"local server: {stop_local_server(project_path)}")
    removed = remove_ours(project_path)
    if removed == "removed":
        click.echo("prefect.toml: removed")
    elif removed == "theirs":
        click.echo(
            "prefect.toml: left as it is (not written by `kedro prefect server start`, or changed since)"
        )


def _selected(config, project, names: tuple[str, ...], loader=None):
    """The pipelines to act on, and (with a config loader) their parameters for the run form."""
    from kedro_prefect_hooks.config import ConfigError
    from kedro_prefect_hooks.project import pipeline_parameters, registered_pipelines

    found = registered_pipelines(project)
    available = found.names
    try:
        selected = config.selected_pipelines(available)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    unknown = [n for n in names if n not in selected]
    if unknown:
        raise click.ClickException(
            f"pipeline(s) {unknown} are not selected in prefect.yml; selected: {selected}"
        )
    chosen = list(names) or selected
    if loader is None:
        return chosen
    return chosen, pipeline_parameters(found, loader, chosen)


def _kedro_project(metadata, loader, env):
    from kedro_prefect_hooks.project import describe_project

    return describe_project(metadata.project_path, env, loader)


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
    from kedro_prefect_hooks.registration.apply import preview
    from kedro_prefect_hooks.registration.apply import register as apply
    from kedro_prefect_hooks.registration.connection import PrefectApiError

    config, api, loader = _config_and_api(metadata, env)
    project = _kedro_project(metadata, loader, env)
    selected, parameters = _selected(config, project, pipelines, loader)
    try:
        if dry_run:
            for change in preview(config, project, selected, api, take_over, parameters):
                click.echo(change.describe())
            click.echo(f"dry run: nothing written to {api.url}")
            return
        outcome = apply(
            config, project, selected, api, retry_refused=True, take_over=take_over, parameters=parameters
        )
    except (ConfigError, PrefectApiError) as exc:
        raise click.ClickException(str(exc)) from None
    for name in outcome.written:
        click.echo(f"written   {name}")
    for name in outcome.unchanged:
        click.echo(f"unchanged {name}")
    for name in outcome.pruned:
        click.echo(f"pruned    {name}")
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
    from kedro_prefect_hooks.registration.api import PrefectApi
    from kedro_prefect_hooks.registration.automations import crash_detection
    from kedro_prefect_hooks.registration.compare import owner_of
    from kedro_prefect_hooks.registration.connection import PrefectApiError
    from kedro_prefect_hooks.registration.plan import FINGERPRINT_LABEL, desired_deployments, owner

    config, api, loader = _config_and_api(metadata, env)
    project = _kedro_project(metadata, loader, env)
    selected, parameters = _selected(config, project, (), loader)
    desired = desired_deployments(config, project, selected, crash_detection(config, api), parameters)
    ours = owner(config, project)
    client = PrefectApi(api, config.timeout)
    try:
        for deployment in desired:
            found = client.deployment_by_name(deployment.flow_name, deployment.name)
            if found is None:
                click.echo(f"{deployment.full_name}: not registered")
                continue
            their_owner = owner_of(found, project)
            if their_owner not in (ours, "legacy"):
                current = f"registered by {their_owner}"
            elif (found.get("labels") or {}).get(FINGERPRINT_LABEL) == deployment.fingerprint:
                current = "current"
            else:
                current = "outdated"
            schedules = [s["schedule"] for s in found.get("schedules") or []]
            last = client.last_flow_run(found["id"])
            last_state = (
                f"{last['state']['type']} ({last['name']})" if last and last.get("state") else "never run"
            )
            click.echo(
                f"{deployment.full_name}: {current}, pool {found['work_pool_name']}, "
                f"schedule {_schedule_text(schedules)}, last run {last_state}"
            )
    except PrefectApiError as exc:
        raise click.ClickException(str(exc)) from None


def _schedule_text(schedules: list[dict]) -> str:
    if not schedules:
        return "none"
    parts = []
    for schedule in schedules:
        kind = next((k for k in ("cron", "interval", "rrule") if schedule.get(k) is not None), "?")
        parts.append(f"{kind} {schedule.get(kind)} {schedule.get('timezone') or ''}".strip())
    return "; ".join(parts)


def _list_option(name: str, what: str):
    return click.option(name, default="", help=f"{what}, comma-separated, as `kedro run {name}`.")


@prefect.command()
@click.argument("pipeline")
@ENV_OPTION
@click.option("--params", default="", help="Runtime params, Kedro syntax: key=value,section.key=value")
@_list_option("--tags", "Only the nodes with any of these tags")
@_list_option("--nodes", "Only these nodes (flow parameter node_names)")
@_list_option("--from-nodes", "These nodes and everything downstream of them")
@_list_option("--to-nodes", "These nodes and everything upstream of them")
@_list_option("--namespaces", "Only the nodes in these namespaces")
@_list_option("--from-inputs", "The nodes downstream of these datasets")
@_list_option("--to-outputs", "The nodes upstream of these datasets")
@click.option("--load-versions", default="", help="dataset:version pairs to load, comma-separated.")
@click.option("--only-missing-outputs", is_flag=True, help="Skip the nodes whose outputs all exist.")
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
    from kedro_prefect_hooks.registration.plan import desired_deployments
    from kedro_prefect_hooks.selection import given_options
    from kedro_prefect_hooks.trigger import run_pipeline

    config, api, loader = _config_and_api(metadata, env)
    project = _kedro_project(metadata, loader, env)
    (deployment,) = desired_deployments(config, project, _selected(config, project, (pipeline,)))
    given = given_options(click.get_current_context())
    run_pipeline(config, api, project, deployment, env, params, wait, timeout, job_variables, filters, given)
