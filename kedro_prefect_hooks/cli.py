"""`kedro prefect ...`: the plugin's commands, listed only inside a Kedro project."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import click

ENV_OPTION = click.option("--env", "-e", default=None, help="Kedro env whose prefect.yml to read.")


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


def _config_and_api(metadata, env: str | None):
    from kedro_prefect_hooks.api import PrefectApiError
    from kedro_prefect_hooks.config import ConfigError, load_project_config
    from kedro_prefect_hooks.hooks import find_api

    project_path, _ = _project(metadata)
    try:
        config = load_project_config(project_path, env)
        return config, find_api(config, project_path)
    except (ConfigError, PrefectApiError) as exc:
        raise click.ClickException(str(exc)) from None


@worker.command("start")
@ENV_OPTION
@click.pass_obj
def worker_start(metadata, env: str | None) -> None:
    """Run a process worker for the configured work pool in the foreground."""
    from kedro_prefect_hooks.processes import Record, file_lock, is_running, read_record, write_record
    from kedro_prefect_hooks.worker import record_path, worker_command, worker_env, worker_name

    project_path, package = _project(metadata)
    config, api = _config_and_api(metadata, env)
    pool = config.work_pool.name
    path = record_path(project_path, pool)
    with file_lock(path.with_suffix(".lock")):  # the hook takes it too before starting one
        if is_running(running := read_record(path)):
            raise click.ClickException(
                f"A worker for pool '{pool}' already runs (pid {running.pid}); "
                "stop it first with `kedro prefect worker stop`."
            )
        click.echo(f"Worker for pool '{pool}' at {api.url}; Ctrl-C stops it.")
        process = subprocess.Popen(worker_command(package, pool, config.worker), cwd=project_path,
                                   env=worker_env(api, config.worker))
        write_record(path, Record(pid=process.pid, marker=worker_name(package, pool), log="(terminal)", url=api.url))
    # A service manager stops us with SIGTERM: pass it on, so the worker does not outlive us.
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        process.wait()
    except KeyboardInterrupt:  # the worker got the terminal's SIGINT too
        process.wait()
    finally:
        path.unlink(missing_ok=True)


@worker.command("status")
@ENV_OPTION
@click.pass_obj
def worker_status(metadata, env: str | None) -> None:
    """This project's worker process, and the pool's workers as Prefect sees them."""
    from kedro_prefect_hooks.api import PrefectApi, PrefectApiError
    from kedro_prefect_hooks.worker import running_workers

    project_path, _ = _project(metadata)
    config, api = _config_and_api(metadata, env)
    pool = config.work_pool.name
    mine = running_workers(project_path).get(pool)
    click.echo(f"this project's worker for pool '{pool}': "
               + (f"running, pid {mine.pid}, log {mine.log}" if mine else "not running"))
    try:
        seen = PrefectApi(api, timeout=config.timeout).pool_workers(pool)
    except PrefectApiError as exc:
        raise click.ClickException(str(exc)) from None
    for entry in seen:
        click.echo(f"  {entry['name']}: {entry.get('status')}, last heartbeat {entry.get('last_heartbeat_time')}")
    if not seen:
        click.echo(f"  Prefect knows no worker for pool '{pool}' at {api.url}")


@worker.command("stop")
@ENV_OPTION
@click.option("--timeout", default=15.0, show_default=True, help="Seconds before SIGKILL.")
@click.pass_obj
def worker_stop(metadata, env: str | None, timeout: float) -> None:
    """Stop the worker this project started (by its recorded pid): SIGTERM, then SIGKILL."""
    from kedro_prefect_hooks.config import ConfigError, load_project_config
    from kedro_prefect_hooks.worker import stop_worker

    project_path, _ = _project(metadata)
    try:
        pool = load_project_config(project_path, env).work_pool.name
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"worker for pool '{pool}': {stop_worker(project_path, pool, timeout)}")


@server.command("start")
@click.option("--port", type=int, default=None, help="Default: 4200 when free, else any free port.")
@click.pass_obj
def server_start(metadata, port: int | None) -> None:
    """Start this project's local Prefect server in the background (takes 10-20 s)."""
    from kedro_prefect_hooks.server import start_local_server

    project_path, _ = _project(metadata)
    click.echo("Starting a local Prefect server...")
    try:
        record, started = start_local_server(project_path, port)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    ui = record.url.removesuffix("/api")
    click.echo(("Started" if started else "Already running") + f": UI {ui}, API {record.url} (pid {record.pid})")
    click.echo(f"Log: {record.log}. Kedro commands in this project use it while no PREFECT_API_URL is set.")


@server.command("status")
@click.pass_obj
def server_status(metadata) -> None:
    """Whether this project's local server runs, and where."""
    from kedro_prefect_hooks.processes import read_record
    from kedro_prefect_hooks.server import is_healthy, local_record_path, local_server_url

    project_path, _ = _project(metadata)
    url = local_server_url(project_path)
    if not url:
        click.echo("local server: not running (start it with `kedro prefect server start`)")
        return
    record = read_record(local_record_path(project_path))
    health = "healthy" if is_healthy(url) else "not answering yet"
    click.echo(f"local server: running, {health}, UI {url.removesuffix('/api')}, pid {record.pid}, log {record.log}")


@server.command("stop")
@click.pass_obj
def server_stop(metadata) -> None:
    """Stop this project's workers, then its local server."""
    from kedro_prefect_hooks.server import stop_local_server
    from kedro_prefect_hooks.worker import running_workers, stop_worker

    project_path, _ = _project(metadata)
    for pool in running_workers(project_path):
        click.echo(f"worker for pool '{pool}': {stop_worker(project_path, pool)}")
    click.echo(f"local server: {stop_local_server(project_path)}")
