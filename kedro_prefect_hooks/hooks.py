"""The Kedro hook: read the prefect config, register, and keep out of the way."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_prefect_hooks.api import ApiSettings, PrefectApiError, resolve_api
from kedro_prefect_hooks.config import INIT_HINT, PrefectConfig, load_config
from kedro_prefect_hooks.project import (
    describe_project,
    inside_prefect_run,
    registered_pipeline_names,
)
from kedro_prefect_hooks.registration import register
from kedro_prefect_hooks.server import local_server_url
from kedro_prefect_hooks.worker import ensure_worker

logger = logging.getLogger(__name__)
if logging.getLogger("kedro_prefect_hooks").level == logging.NOTSET:
    # Kedro's logging config sets INFO for `kedro` only; without this, the lines
    # saying what was registered and where the worker logs would never show.
    logging.getLogger("kedro_prefect_hooks").setLevel(logging.INFO)


class PrefectHook:
    """Registers the project's selected pipelines as Prefect deployments when a session starts.

    Config errors fail the Kedro command (nothing is registered); API failures
    are one warning unless `on_error: raise`.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        if inside_prefect_run():
            return  # the flow run opens a session too; registering there would loop
        config = load_config(context.config_loader)
        if config is None:
            logger.warning("kedro-prefect-hooks: no prefect.yml found, nothing registered; %s.", INIT_HINT)
            return
        if not config.enabled:
            return
        try:
            available = registered_pipeline_names()
        except Exception as exc:  # a broken registry is the command's to report, not ours
            logger.warning("kedro-prefect-hooks: nothing registered; loading the pipelines failed: %s", exc)
            return
        pipelines = config.selected_pipelines(available)
        project = describe_project(context.project_path, context.env, context.config_loader)
        try:
            api = find_api(config, project.path)
            outcome = register(config, project, pipelines, api)
        except PrefectApiError as exc:
            if config.on_error == "raise":
                raise
            logger.warning("kedro-prefect-hooks: nothing registered. %s", exc)
            return
        if outcome.written or outcome.pruned:
            logger.info(
                "kedro-prefect-hooks: registered %s%s%s at %s",
                ", ".join(outcome.written) or "nothing new",
                f"; pruned {', '.join(outcome.pruned)}" if outcome.pruned else "",
                f"; created process work pool '{config.work_pool.name}'" if outcome.created_work_pool else "",
                api.url,
            )
        if config.worker.start:
            started = ensure_worker(project.path, project.package, config.work_pool.name, config.worker, api)
            if started:
                logger.info(
                    "kedro-prefect-hooks: started a process worker for pool '%s' (pid %s); log: %s; "
                    "stop it with `kedro prefect worker stop`",
                    config.work_pool.name,
                    started.pid,
                    started.log,
                )


def find_api(config: PrefectConfig, project_path: Path) -> ApiSettings:
    """The configured API, else this project's local server if it runs, else an error with the two ways out."""
    api = resolve_api(config.api_url)
    if api is None and (url := local_server_url(project_path)):
        api = ApiSettings(url=url, source="the local server of `kedro prefect server start`", headers={})
    if api is None:
        raise PrefectApiError(
            "No Prefect API: start a local one with `kedro prefect server start`, "
            "or set PREFECT_API_URL (or `api_url` in prefect.yml)."
        )
    return api
