"""The Kedro hook: read the prefect config, register, maybe start the worker; nothing else."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_prefect_hooks.compat import requested_pipelines
from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.config.base import ShortError
from kedro_prefect_hooks.config.loader import INIT_HINT, missing_env_folder
from kedro_prefect_hooks.local.registrar import RegistrarRun, news, registrar_log, start_registrar
from kedro_prefect_hooks.local.server import local_server_url
from kedro_prefect_hooks.local.worker import WorkerStartError, ensure_worker
from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
from kedro_prefect_hooks.prefect_api.find import find_api
from kedro_prefect_hooks.prefect_api.settings import ApiSettings
from kedro_prefect_hooks.project import KedroProject, inside_prefect_run, registry_inputs
from kedro_prefect_hooks.project_context import ProjectContext
from kedro_prefect_hooks.registration.apply import (
    PartialRegistration,
    RefusedBefore,
    RegistrationStopped,
    register,
)
from kedro_prefect_hooks.registration.plan import CatalogUnavailable, after_dataset_keys

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
        entry = ProjectContext.of_session(context)
        config = entry.config
        if config is None:
            logger.warning("kedro-prefect-hooks: no prefect.yml found, nothing registered; %s.", INIT_HINT)
            return
        if not config.enabled:
            return
        project = entry.project
        said = _say_how_the_background_registration_ended(project.path)
        wanted = requested_pipelines()
        if config.on_error != "raise" and entry.can_register_later(wanted):
            _register_in_the_background(config, project, said)
            return
        try:
            found = entry.pipelines(use_cache=True, wanted=wanted)
        except Exception as exc:  # a broken registry is the command's to report, not ours
            logger.warning("kedro-prefect-hooks: nothing registered; loading the pipelines failed: %s", exc)
            return
        pipelines = entry.selected_pipelines()  # a module that failed to import is never taken as removed
        if problems := entry.load_problems():
            logger.warning("kedro-prefect-hooks: %s", problems)
        # a config error (`after_datasets` naming what the catalog lacks) is raised, as prefect.yml's are
        try:
            keys = after_dataset_keys(config, project, pipelines, entry.catalog, found.outputs)
        except CatalogUnavailable as exc:  # the command's own catalog use reports it, if it has one
            logger.warning("kedro-prefect-hooks: nothing registered: %s", exc)
            return
        outcome, api = None, None
        try:
            api = find_api(config.api_url, project.path, local_server_url(project.path))
            parameters = entry.parameters(pipelines)
            outcome = register(
                config,
                project,
                pipelines,
                api,
                prune=entry.may_prune,
                parameters=parameters,
                budget=config.timeout,
                asset_keys=keys,
            )
        except PrefectApiError as exc:
            _failed(config, exc)
            if not isinstance(exc, (PartialRegistration, RefusedBefore)):
                return  # the API is down or slow: a worker could not come online either
        if outcome is not None:
            for line in outcome.clash_lines():
                logger.warning("kedro-prefect-hooks: %s", line)
            if outcome.summary():
                logger.info("kedro-prefect-hooks: %s at %s", outcome.summary(), api.url if api else "?")
        if api is not None:
            _start_worker_if_asked(config, project, api)


def _register_in_the_background(
    config: PrefectConfig, project: KedroProject, said: RegistrarRun | None
) -> None:
    """The pipelines changed since their last load: `kedro prefect register` loads them, detached,
    so that this command never waits for every pipeline module's imports. Not without an API:
    the session says that itself, as a registering one would."""
    try:
        api = find_api(config.api_url, project.path, local_server_url(project.path))
    except PrefectApiError as exc:
        _failed(config, exc)
        return
    stood_in_the_way = start_registrar(project.path, project.env, registry_inputs(project))
    log = registrar_log(project.path)
    if stood_in_the_way is None:
        logger.info(
            "kedro-prefect-hooks: the pipelines changed since they were last loaded; registering them in "
            "the background (log: %s; `kedro prefect list` says how it went)",
            log,
        )
    elif stood_in_the_way.state == "running":
        logger.info("kedro-prefect-hooks: a registration is running in the background (log: %s)", log)
    elif stood_in_the_way.warns and (said is None or said.started != stood_in_the_way.started):
        logger.warning(  # it ended on these same files: loading them again would end the same way
            "kedro-prefect-hooks: the pipelines did not all load: the background registration %s; an edit "
            "makes the next session try again, `kedro prefect register` tries now",
            stood_in_the_way.describe(),
        )
    _start_worker_if_asked(config, project, api)


def _say_how_the_background_registration_ended(project_path: Path) -> RegistrarRun | None:
    if (ended := news(project_path)) is not None:
        say = logger.warning if ended.warns else logger.info
        say("kedro-prefect-hooks: the background registration %s", ended.describe())
    return ended


def _start_worker_if_asked(config: PrefectConfig, project: KedroProject, api: ApiSettings) -> None:
    if config.worker.start:
        try:
            _start_worker(config, project.path, project.package, api)
        except (PrefectApiError, WorkerStartError) as exc:
            _failed(config, exc, about_registration=False)


def _failed(config: PrefectConfig, exc: Exception, about_registration: bool = True) -> None:
    """One warning; with `on_error: raise`, an error Kedro prints in a few lines (the traceback on request)."""
    if config.on_error == "raise":
        raise RegistrationFailed(str(exc)) from exc
    said = (
        isinstance(exc, (PartialRegistration, RegistrationStopped, RefusedBefore)) or not about_registration
    )
    logger.warning("kedro-prefect-hooks: %s%s", "" if said else "nothing registered. ", exc)


class RegistrationFailed(PrefectApiError, ShortError):
    """`on_error: raise`: the session fails with the message, in a few lines."""

    def __init__(self, message: str):
        ShortError.__init__(self, message)


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
