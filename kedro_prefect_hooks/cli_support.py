"""What the plugin's commands share: the `--env` option, and the project's context and API."""

from __future__ import annotations

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


def project_of(metadata) -> tuple[Path, str]:
    return Path(metadata.project_path), metadata.package_name


def command_context(metadata, env: str | None, required: bool = True):
    """The command's ProjectContext with its prefect config read, or a one-line error naming the fix.

    Worker commands pass `required=False`: without prefect.yml they serve the default pool.
    """
    from kedro_prefect_hooks.config import ConfigError
    from kedro_prefect_hooks.project_context import ProjectContext

    entry = ProjectContext.of_project(metadata.project_path, env)
    try:
        config = entry.config
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if config is None and required:
        raise click.ClickException(
            f"No prefect.yml in {entry.path / 'conf'}: run `kedro prefect init` first."
        )
    return entry


def context_and_api(metadata, env: str | None, required: bool = True):
    """The command's ProjectContext and the API it talks to, or a one-line error naming the fix."""
    from kedro_prefect_hooks.prefect_api.errors import PrefectApiError

    entry = command_context(metadata, env, required)
    try:
        return entry, api_of(entry.settings, entry.path)
    except PrefectApiError as exc:
        raise click.ClickException(str(exc)) from None


def api_of(config, project_path: Path):
    """The API a command talks to: prefect_api.find_api, told whether this project's server runs."""
    from kedro_prefect_hooks.local.server import local_server_url
    from kedro_prefect_hooks.prefect_api.find import find_api

    return find_api(config.api_url, project_path, local_server_url(project_path))
