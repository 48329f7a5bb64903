"""Every private or version-dependent Kedro and Prefect API the plugin uses, in one place.

Each function says what it relies on and what happens if that changes, so a new
Kedro or Prefect release breaks here, visibly, and never silently elsewhere.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, as a package
    import tomli as tomllib


@contextmanager
def all_pipelines_visible(pipelines: Any) -> Iterator[None]:
    """Lift the filter `kedro run --pipelines a` puts on the registry (Kedro >= 1.5), then restore it.

    Private: `_ProjectPipelines._requested_pipelines` (Kedro has a setter,
    `set_requested`, but no getter). If it is renamed, the filter is lifted and not
    restored: the command then loads every pipeline, slower but correct; what we
    register never shrinks to the command's selection.
    """
    set_requested = getattr(pipelines, "set_requested", None)
    if set_requested is None:  # Kedro < 1.5 always loads every pipeline
        yield
        return
    missing = object()
    requested = getattr(pipelines, "_requested_pipelines", missing)
    set_requested(None)
    try:
        yield
    finally:
        if requested is not missing:
            set_requested(requested)


def requested_pipelines() -> list[str]:
    """The pipelines this command asked the registry for (`kedro run --pipelines a,b`), if known.

    Private like the filter above: `_ProjectPipelines._requested_pipelines` (Kedro >= 1.5).
    Before 1.5 (or if it is renamed), the options of the `kedro run` being run, read from
    click's context, which Kedro's CLI runs under; [] outside a command.
    """
    from kedro.framework.project import pipelines

    requested = getattr(pipelines, "_requested_pipelines", None)
    if requested is None:
        requested = _run_options_pipelines()
    return [name for name in requested or [] if isinstance(name, str)]


def _run_options_pipelines() -> list[str]:
    """`--pipeline a` / `--pipelines a,b` of the click command being run, if it has them."""
    import click

    context = click.get_current_context(silent=True)
    if context is None:
        return []
    given = context.params.get("pipelines") or []
    if isinstance(given, str):
        given = given.split(",")
    return [
        name.strip()
        for name in [context.params.get("pipeline"), *given]
        if isinstance(name, str) and name.strip()
    ]


def run_session(session: Any, pipeline: str, runner: Any, **filters: Any) -> Any:
    """`session.run` for one pipeline: `pipeline_names` since Kedro 1.2, `pipeline_name` before."""
    if "pipeline_names" in inspect.signature(session.run).parameters:
        return session.run(pipeline_names=[pipeline], runner=runner, **filters)
    return session.run(pipeline_name=pipeline, runner=runner, **filters)


def filter_pipeline(pipeline: Any, namespaces: list[str] | None = None, **filters: Any) -> Any:
    """`Pipeline.filter` with `kedro run`'s filters, as `KedroSession.run` applies them.

    Kedro 1.x takes `node_namespaces` (a list); an older signature with one
    `node_namespace` gets the namespaces one at a time, joined.
    """
    parameters = inspect.signature(pipeline.filter).parameters
    if not namespaces:
        return pipeline.filter(**filters)
    if "node_namespaces" in parameters:
        return pipeline.filter(node_namespaces=namespaces, **filters)
    return sum((pipeline.filter(node_namespace=ns, **filters) for ns in namespaces), type(pipeline)([]))


def dataset_description(dataset: Any) -> dict[str, Any]:
    """A Kedro dataset's own description (filepath, version...).

    Private but implemented by every Kedro dataset: `AbstractDataset._describe()`.
    Returns {} when it is missing or fails, so a report never breaks a run.
    """
    try:
        description = dataset._describe()
    except Exception:
        return {}
    return description if isinstance(description, dict) else {}


def saved_version_path(dataset: Any) -> str | None:
    """Where a versioned dataset writes this run's version: `<filepath>/<save version>/<file name>`.

    Public: `resolve_save_version()` (None for an unversioned dataset). Private:
    `AbstractVersionedDataset._get_versioned_path`. Returns None when either is
    missing or fails: the report then shows the dataset's unversioned path.
    """
    try:
        save_version = dataset.resolve_save_version()
        return None if save_version is None else str(dataset._get_versioned_path(save_version))
    except Exception:
        return None


def suggest_resume(runner: Any, pipeline: Any, done_nodes: list, catalog: Any) -> None:
    """Kedro's "you can resume with --from-nodes ..." log line.

    Private: `AbstractRunner._suggest_resume_scenario`; skipped if it is gone. Its
    node set comes from `_find_nodes_to_resume_from` (below), as ours does.
    """
    suggest = getattr(runner, "_suggest_resume_scenario", None)
    if suggest is not None:
        suggest(pipeline, done_nodes, catalog)


def is_versioned(dataset: Any) -> bool:
    """Whether a dataset is versioned (`versioned: true` in the catalog).

    Every kedro-datasets dataset subclasses `AbstractVersionedDataset`, versioned or
    not; only its private `_version` (a `Version`, or None) tells. If the attribute is
    renamed, datasets count as unversioned: a resumed run then loads each one's
    latest version (Kedro's default) instead of the earlier attempt's.
    """
    return getattr(dataset, "_version", None) is not None


def resume_start_nodes(pipeline: Any, unfinished_nodes: list, catalog: Any) -> set[str]:
    """Kedro's own resume rule: the nodes to start from so that every unfinished node runs, with
    the nodes that must run again to remake in-memory inputs.

    Private: `kedro.runner.runner._find_nodes_to_resume_from` (the same in Kedro 1.0-1.7).
    If it is gone, every unfinished node and everything after it runs again from the
    first one, which is safe but repeats more.
    """
    try:
        from kedro.runner.runner import _find_nodes_to_resume_from
    except ImportError:
        return {node.name for node in unfinished_nodes}
    return set(_find_nodes_to_resume_from(pipeline, unfinished_nodes, catalog))


def run_catalog(context: Any, save_version: str, load_versions: dict[str, str] | None) -> Any:
    """The catalog of a run with a given save version, as the session builds it for `session.run`.

    Private: `KedroContext._get_catalog(save_version=..., load_versions=...)`, the only way
    Kedro offers to build a catalog for a run that another process started. Used in
    Dask worker processes, so that every process writes the run's one version.
    """
    from kedro.framework.project import settings

    return context._get_catalog(
        catalog_class=settings.DATA_CATALOG_CLASS, save_version=save_version, load_versions=load_versions
    )


def session_hook_manager(session: Any) -> Any:
    """The session's hook manager, with the project's and plugins' hooks registered.

    Private: `KedroSession._hook_manager` (no public accessor); used in Dask worker
    processes so node and dataset hooks fire there as under `kedro run`.
    """
    return session._hook_manager


def mlflow_thread_run_stack() -> list | None:
    """This thread's stack of active MLflow runs; None when runs are not per thread, or unknown.

    Private: `mlflow.tracking.fluent._active_run_stack`, a ThreadLocalVariable of a list of
    ActiveRun since MLflow 2.18 (one process-wide list before, when nothing needs sharing).
    MLflow has no public way to make an existing run active in a thread without
    `start_run` (a status write), nor inactive without `end_run` (which ends it for every
    thread). If the name changes, sharing the run across threads is skipped: the
    behaviour is then what MLflow does on its own.
    """
    try:
        from mlflow.tracking import fluent

        stack_var = fluent._active_run_stack
    except (ImportError, AttributeError):
        return None
    if not hasattr(stack_var, "get"):
        return None
    stack = stack_var.get()
    return stack if isinstance(stack, list) else None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file (pyproject.toml, Prefect's profiles.toml); tomllib is 3.11+, tomli before."""
    return tomllib.loads(path.read_text())


TOMLDecodeError = tomllib.TOMLDecodeError


def prefect_cron_problem(expression: str) -> str | None:
    """Why Prefect would refuse a cron expression, or None: exactly Prefect's own rule.

    Prefect validates cron with its vendored croniter (`prefect._vendor.croniter`,
    private) and refuses croniter's random and hashed fields (R, H). Importing it
    through prefect costs ~1 s, so its file is loaded on its own (~25 ms, only when
    a cron is configured). If it moves, the check falls back to Prefect's public
    CronSchedule model, which imports prefect.
    """
    croniter = _vendored_croniter()
    if croniter is None:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=expression)
        except ValueError as exc:
            return str(exc).splitlines()[-1]
        return None
    if not croniter.is_valid(expression):
        return "Prefect's cron parser refuses it"
    if any(field.casefold() in ("r", "h") for field in expression.split()):
        return "random (R) and hashed (H) fields are not supported by Prefect"
    return None


def _vendored_croniter() -> Any:
    import importlib.util

    module = sys.modules.get("_kph_prefect_croniter")
    if module is not None:
        return module.croniter
    spec = importlib.util.find_spec("prefect")  # locates the package without importing it
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "_vendor" / "croniter"
    if not (folder / "__init__.py").is_file():
        return None
    loader_spec = importlib.util.spec_from_file_location(
        "_kph_prefect_croniter", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if loader_spec is None or loader_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules["_kph_prefect_croniter"] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception:
        del sys.modules["_kph_prefect_croniter"]
        return None
    return module.croniter


def is_memory_dataset_type(kind: str) -> bool:
    """Whether a dataset type (a class name or a dotted path) is one of Kedro's in-memory datasets,
    whose data lives only in the process that made it."""
    return kind.rsplit(".", 1)[-1] in ("MemoryDataset", "SharedMemoryDataset")
