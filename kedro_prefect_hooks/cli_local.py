"""`kedro prefect worker ...` and `kedro prefect server ...`: this project's local processes."""

from __future__ import annotations

import click

from kedro_prefect_hooks.cli_support import ENV_OPTION, api_of, command_context, context_and_api, project_of


@click.group()
def worker() -> None:
    """The process worker that runs this project's deployments.

    \b
    Examples:
      kedro prefect worker start      # in the foreground, Ctrl-C stops it
      kedro prefect worker status
      kedro prefect worker stop       # the one `worker: {start: true}` started
    """


@click.group()
def server() -> None:
    """A local Prefect server for this project (SQLite, 127.0.0.1, no Docker).

    \b
    Examples:
      kedro prefect server start      # in the background; prints the UI URL
      kedro prefect server status
      kedro prefect server stop       # stops this project's worker first
    """


@worker.command("start")
@ENV_OPTION
@click.pass_obj
def worker_start(metadata, env: str | None) -> None:
    """Run a process worker for the configured work pool in the foreground.

    \b
    Example:
      kedro prefect worker start --env local
    """
    from kedro_prefect_hooks.local.worker import WorkerStartError, run_in_foreground

    project_path, package = project_of(metadata)
    entry, api = context_and_api(metadata, env, required=False)
    config = entry.settings
    pool = config.work_pool.name
    try:
        failed = run_in_foreground(
            project_path,
            package,
            pool,
            api,
            config.worker,
            lambda: click.echo(f"Worker for pool '{pool}' at {api.url}; Ctrl-C stops it."),
        )
    except WorkerStartError as exc:
        raise click.ClickException(str(exc)) from None
    if failed is not None:
        raise click.ClickException(f"the worker for pool '{pool}' exited with code {failed}")


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
    from kedro_prefect_hooks.local.worker import running_workers
    from kedro_prefect_hooks.prefect_api.client import command_client
    from kedro_prefect_hooks.prefect_api.errors import PrefectApiError

    project_path, _ = project_of(metadata)
    config = command_context(metadata, env, required=False).settings
    pool = config.work_pool.name
    mine = running_workers(project_path).get(pool)
    click.echo(
        f"this project's worker for pool '{pool}': "
        + (f"running, pid {mine.pid}, log {mine.log}" if mine else "not running")
    )
    try:
        api = api_of(config, project_path)
        seen = command_client(api, config.timeout).pool_workers(pool)
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
    from kedro_prefect_hooks.local.worker import stop_worker
    from kedro_prefect_hooks.prefect_api.client import command_client
    from kedro_prefect_hooks.prefect_api.errors import PrefectApiError

    project_path, _ = project_of(metadata)
    config = command_context(metadata, env, required=False).settings
    try:
        client = command_client(api_of(config, project_path), config.timeout)
    except PrefectApiError:
        client = None  # no API to tell: the process is stopped all the same
    pool = config.work_pool.name
    click.echo(f"worker for pool '{pool}': {stop_worker(project_path, pool, timeout, client)}")


@server.command("start")
@click.option(
    "--port",
    type=int,
    default=None,
    help="Default: the port it had last time, else 4200, when free; else any free port.",
)
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
    from kedro_prefect_hooks.local.server import start_local_server
    from kedro_prefect_hooks.prefect_api.prefect_toml import start_lines
    from kedro_prefect_hooks.prefect_api.settings import ui_url

    project_path, _ = project_of(metadata)
    click.echo("Starting a local Prefect server...")
    try:
        record, started = start_local_server(project_path, port)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        ("Started" if started else "Already running")
        + f": UI {ui_url(record.url)}, API {record.url} (pid {record.pid})"
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
    from kedro_prefect_hooks.prefect_api.settings import ui_url

    project_path, _ = project_of(metadata)
    record = local_server(project_path)
    if record is None:
        click.echo("local server: not running (start it with `kedro prefect server start`)")
        return
    health = "healthy" if is_healthy(record.url) else "not answering yet"
    click.echo(
        f"local server: running, {health}, UI {ui_url(record.url)}, pid {record.pid}, log {record.log}"
    )


@server.command("stop")
@click.pass_obj
def server_stop(metadata) -> None:
    """Stop this project's workers, then its local server, and remove the prefect.toml it wrote.

    \b
    Example:
      kedro prefect server stop
    """
    from kedro_prefect_hooks.local.server import stop_local_server
    from kedro_prefect_hooks.local.worker import running_workers, stop_worker
    from kedro_prefect_hooks.prefect_api.prefect_toml import remove_ours

    project_path, _ = project_of(metadata)
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
