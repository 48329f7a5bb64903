"""The Kedro hook: read the prefect config, register, and keep out of the way."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_prefect_hooks.api import PrefectApiError, resolve_api
from kedro_prefect_hooks.config import INIT_HINT, load_config
from kedro_prefect_hooks.project import (
    describe_project,
    inside_prefect_run,
    registered_pipeline_names,
)
from kedro_prefect_hooks.registration import register

logger = logging.getLogger(__name__)


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
        project = describe_project(context)
        api = resolve_api(config.api_url)
        try:
            if api is None:
                raise PrefectApiError(
                    "no Prefect API configured: set PREFECT_API_URL, `api_url` in prefect.yml, "
                    "or a Prefect profile with PREFECT_API_URL"
                )
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
                f"; created process work pool '{config.work_pool.name}'"
                if outcome.created_work_pool
                else "",
                api.url,
            )
