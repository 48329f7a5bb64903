"""What the plugin's commands share: the `--env` option, and the project's config and API."""

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


def project_config(metadata, env: str | None, required: bool = True):
    """The project's config and config loader, or a one-line error naming the fix.

    Worker commands pass `required=False`: without prefect.yml they serve the default pool.
    """
    from kedro_prefect_hooks.config import ConfigError, PrefectConfig
    from kedro_prefect_hooks.config.loader import load_config
    from kedro_prefect_hooks.project import project_config_loader

    project_path, _ = project_of(metadata)
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


def config_and_api(metadata, env: str | None, required: bool = True):
    """The project's config, API and config loader, or a one-line error naming the fix."""
    from kedro_prefect_hooks.prefect_api.errors import PrefectApiError

    config, loader = project_config(metadata, env, required)
    try:
        return config, api_of(config, project_of(metadata)[0]), loader
    except PrefectApiError as exc:
        raise click.ClickException(str(exc)) from None


def api_of(config, project_path: Path):
    """The API a command talks to: prefect_api.find_api, told whether this project's server runs."""
    from kedro_prefect_hooks.local.server import local_server_url
    from kedro_prefect_hooks.prefect_api.find import find_api

    return find_api(config.api_url, project_path, local_server_url(project_path))
