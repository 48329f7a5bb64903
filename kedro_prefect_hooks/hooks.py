"""The Kedro hook: read the prefect config, register, maybe start the worker; nothing else."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.config.loader import INIT_HINT, load_config, missing_env_folder
from kedro_prefect_hooks.local.prefect_toml import FILE_NAME, is_ours
from kedro_prefect_hooks.local.server import local_server_url
from kedro_prefect_hooks.local.worker import WorkerStartError, ensure_worker
from kedro_prefect_hooks.project import (
    describe_project,
    inside_prefect_run,
    pipeline_parameters,
    project_config_loader,
    registered_pipelines,
)
from kedro_prefect_hooks.registration.apply import PartialRegistration, register
from kedro_prefect_hooks.registration.connection import (
    LOCAL_SERVER,
    ApiSettings,
    PrefectApiError,
    resolve_api,
)
from kedro_prefect_hooks.registration.prefect_settings import PREFECT_TOML

logger = logging.getLogger(__name__)
if logging.getLogger("kedro_prefect_hooks").level == logging.NOTSET:
    # Kedro's logging config sets INFO for `kedro` only; without this, the lines
    # saying what was registered and where the worker logs would never show.
    logging.getLogger("kedro_prefect_hooks").setLevel(logging.INFO)


class PrefectHook:
    """Registers the project's selected pipelines as Prefect deployments when a session starts.

    Config errors fail the Kedro command in a few lines (nothing is registered);
    anything on Prefect's side is one warning unless `on_error: raise`.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        if inside_prefect_run():
            return  # the flow run opens a session too; registering there would loop
        if folder := missing_env_folder(context.config_loader):
            logger.warning("kedro-prefect-hooks: nothing registered: the Kedro env has no folder %s.", folder)
            return
        config = load_config(context.config_loader)
        if config is None:
            logger.warning("kedro-prefect-hooks: no prefect.yml found, nothing registered; %s.", INIT_HINT)
            return
        if not config.enabled:
            return
        project = describe_project(context.project_path, context.env, context.config_loader)
        try:
            found = registered_pipelines(project)
        except Exception as exc:  # a broken registry is the command's to report, not ours
            logger.warning("kedro-prefect-hooks: nothing registered; loading the pipelines failed: %s", exc)
            return
        if found.problems:  # a pipeline module failed to import: never take it as removed
            pipelines = [
                p for p in config.selected_pipelines(found.names, missing_ok=True) if p in found.names
            ]
            logger.warning(
                "kedro-prefect-hooks: registering only what loaded%s; the pipeline registry reported: %s",
                ", nothing pruned" if config.prune else "",
                " / ".join(found.problems),
            )
        else:
            pipelines = config.selected_pipelines(found.names)
        prune = config.prune and not found.problems
        try:
            api = find_api(config, project.path)
            parameters = pipeline_parameters(found, _loader_without_runtime_params(context), pipelines)
            outcome = register(config, project, pipelines, api, prune=prune, parameters=parameters)
            if config.worker.start:
                _start_worker(config, project.path, project.package, api)
        except (PrefectApiError, WorkerStartError) as exc:
            if config.on_error == "raise":
                raise
            written_some = isinstance(exc, (PartialRegistration, WorkerStartError))
            logger.warning("kedro-prefect-hooks: %s%s", "" if written_some else "nothing registered. ", exc)
            return
        for line in outcome.clash_lines():
            logger.warning("kedro-prefect-hooks: %s", line)
        if outcome.summary():
            logger.info("kedro-prefect-hooks: %s at %s", outcome.summary(), api.url)


def _start_worker(config: PrefectConfig, project_path: Path, package: str, api: ApiSettings) -> None:
    pool = config.work_pool.name
    started, note = ensure_worker(project_path, package, pool, config.worker, api)
    if started:
        logger.info(
            "kedro-prefect-hooks: started a process worker for pool '%s' (pid %s%s); log: %s; "
            "stop it with `kedro prefect worker stop`",
            pool,
            started.pid,
            f"; {note}" if note else "",
            started.log,
        )


def _loader_without_runtime_params(context: Any) -> Any:
    """The form shows parameters.yml's values: not a `kedro run --params` override of this command."""
    if not getattr(context.config_loader, "runtime_params", None):
        return context.config_loader
    return project_config_loader(context.project_path, context.env)


def find_api(config: PrefectConfig, project_path: Path) -> ApiSettings:
    """The configured API, else this project's local server if it runs, else an error with the two ways out.

    The prefect.toml that `kedro prefect server start` wrote counts as the local server
    while that runs; once it is stopped, the file is named instead of used: by then
    another server (another project's) may listen on its port.
    """
    api = resolve_api(config.api_url)
    local = local_server_url(project_path)
    if api is not None and api.source == PREFECT_TOML and _our_prefect_toml(project_path):
        if api.url != local:
            raise PrefectApiError(
                f"{PREFECT_TOML} was written by `kedro prefect server start` for this project's local "
                f"server, which is not running: start it again with `kedro prefect server start`, or "
                f"delete prefect.toml"
            )
        api = replace(api, source=LOCAL_SERVER)
    if api is None and local:
        api = ApiSettings(url=local, source=LOCAL_SERVER)
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
