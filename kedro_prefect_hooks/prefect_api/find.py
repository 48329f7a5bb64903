"""The one rule for which Prefect API a session or a `kedro prefect` command talks to."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
from kedro_prefect_hooks.prefect_api.prefect_settings import PREFECT_TOML
from kedro_prefect_hooks.prefect_api.prefect_toml import FILE_NAME, is_ours
from kedro_prefect_hooks.prefect_api.settings import LOCAL_SERVER, ApiSettings, resolve_api, same_api


def find_api(configured_url: str | None, project_path: Path, local_url: str | None) -> ApiSettings:
    """`api_url` of prefect.yml, else Prefect's own settings, else this project's local server
    (`local_url`, None when it does not run); else an error with the two ways out.

    The prefect.toml that `kedro prefect server start` wrote counts as the local server
    while that runs; once it is stopped, the file is named instead of used: by then
    another server (another project's) may listen on its port. An API whose URL is the
    running local server's, wherever the URL came from, is marked as the local server.
    The caller looks the local server up (`local/server.local_server_url`), so that this
    layer stays below the one that runs processes.
    """
    api = resolve_api(configured_url)
    if api is not None and api.source == PREFECT_TOML and _our_prefect_toml(project_path):
        if not (local_url and same_api(api.url, local_url)):
            raise PrefectApiError(
                f"{PREFECT_TOML} was written by `kedro prefect server start` for this project's local "
                f"server, which is not running: start it again with `kedro prefect server start`, or "
                f"delete prefect.toml"
            )
        api = replace(api, source=LOCAL_SERVER)
    if api is None and local_url:
        api = ApiSettings(url=local_url, source=LOCAL_SERVER)
    if api is not None and local_url and same_api(api.url, local_url):
        api = replace(api, local_server=True)
    if api is None:
        raise PrefectApiError(
            "No Prefect API: start a local one with `kedro prefect server start`, "
            "or set PREFECT_API_URL (or `api_url` in prefect.yml)."
        )
    return api


def _our_prefect_toml(project_path: Path) -> bool:
    """The working directory's prefect.toml is the one `server start` wrote into this project."""
    here = Path.cwd() / FILE_NAME
    return here.resolve() == (Path(project_path) / FILE_NAME).resolve() and is_ours(here)
