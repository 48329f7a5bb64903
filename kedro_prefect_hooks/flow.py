"""The flow every registered deployment runs (entrypoint `kedro_prefect_hooks.flow.kedro_pipeline`).

It is importable by module path, so a worker started anywhere can load it; the
deployment's pull step puts the run in the project directory, and the Kedro
project is rebuilt from there on each run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from kedro_prefect_hooks.compat import run_session
from kedro_prefect_hooks.config import RunOptions
from kedro_prefect_hooks.config.work_pool import helper_name
from kedro_prefect_hooks.parameters_form import FIELD as FORM_FIELD
from kedro_prefect_hooks.parameters_form import changed_values, defaults_of
from kedro_prefect_hooks.project_context import ProjectContext
from kedro_prefect_hooks.run.console import plain_console
from kedro_prefect_hooks.run.logs import kedro_logs_to_prefect
from kedro_prefect_hooks.run.report import RunReport, artifact_key


@flow(name="kedro-pipeline")
def kedro_pipeline(
    pipeline: str = "__default__",
    env: str | None = None,
    params: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    node_names: list[str] | None = None,
    from_nodes: list[str] | None = None,
    to_nodes: list[str] | None = None,
    namespaces: list[str] | None = None,
    from_inputs: list[str] | None = None,
    to_outputs: list[str] | None = None,
    load_versions: dict[str, str] | None = None,
    only_missing_outputs: bool = False,
    parameters: dict[str, Any] | None = None,
) -> None:
    """Run Kedro pipeline `pipeline` of the project in the working directory, in env `env`.

    `params` override parameters.yml (Kedro runtime params); `parameters` is the run
    form's copy of the pipeline's parameters, of which the changed values override
    them too; the other arguments are `kedro run`'s options of the same names.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from kedro_prefect_hooks.run.assets import RunFacts
    from kedro_prefect_hooks.run.remote import RemoteRun
    from kedro_prefect_hooks.run.resume import earlier_attempt
    from kedro_prefect_hooks.run.runner import PrefectRunner
    from kedro_prefect_hooks.run_options import command_options

    project_path = Path.cwd()
    metadata = bootstrap_project(project_path)
    params = _with_form_changes(params, parameters)
    # One view of the project for the whole run; its env is Kedro's rule (KedroSession.create:
    # the env given, else KEDRO_ENV), so the run options, the env check, the report and every
    # Dask worker use the session's env.
    entry = ProjectContext.of_project(project_path, env, params)
    env = entry.env
    _check_env(project_path, env)
    _check_pipeline(pipeline)
    options = entry.settings.options_for(pipeline).run
    report = RunReport(pipeline, env, [], entry.env_in_force)
    filters = {
        "tags": tags,
        "node_names": node_names,
        "from_nodes": from_nodes,
        "to_nodes": to_nodes,
        "namespaces": namespaces,
        "from_inputs": from_inputs,
        "to_outputs": to_outputs,
        "load_versions": load_versions,
        "only_missing_outputs": only_missing_outputs,
    }
    logger_names = ["kedro", metadata.package_name, "kedro_prefect_hooks"]
    try:
        session = KedroSession.create(project_path=project_path, env=env, runtime_params=params)
        with plain_console(), kedro_logs_to_prefect(logger_names), session:
            report.save_version = session.session_id
            remote = RemoteRun(str(project_path), env, params, pipeline, session.session_id, load_versions)
            resume = earlier_attempt(artifact_key(pipeline))
            facts = RunFacts(metadata.project_name, entry.env_in_force[0], pipeline, session.session_id)
            runner = PrefectRunner(
                options,
                report,
                remote,
                resume,
                command_options(env, params, filters),
                facts,
                _children(options),
            )
            run_session(session, pipeline, runner=runner, **filters)
    finally:
        _publish(report)


@flow(name="kedro-nodes")
def kedro_nodes(
    pipeline: str,
    node_names: list[str],
    save_version: str,
    env: str | None = None,
    params: dict[str, Any] | None = None,
    load_versions: dict[str, str] | None = None,
) -> None:
    """A child run (`run.node_tags.<tag>.work_pool`): nodes `node_names` of `pipeline`, with the
    parent run's env, params and save version; started and awaited by the parent run."""
    from kedro_prefect_hooks.run.child_runs import run_child_nodes
    from kedro_prefect_hooks.run.remote import RemoteRun

    _check_env(Path.cwd(), env)
    run_child_nodes(
        RemoteRun(str(Path.cwd()), env, params, pipeline, save_version, load_versions), node_names
    )


def _children(options: RunOptions) -> dict[str, Any]:
    """Pool tag -> the helper deployment registration wrote beside this run's deployment, if any."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import deployment

    from kedro_prefect_hooks.run.child_runs import ChildRun

    pools = {tag: o.work_pool.name for tag, o in options.node_tags.items() if o.work_pool is not None}
    if not pools or not deployment.id:
        return {}
    with get_client(sync_client=True) as client:
        found = client.read_deployment(deployment.id)
        flow_name = client.read_flow(found.flow_id).name
    return {tag: ChildRun(f"{flow_name}/{helper_name(found.name, tag)}", pool) for tag, pool in pools.items()}


def _with_form_changes(params: dict[str, Any] | None, form: dict[str, Any] | None) -> dict[str, Any] | None:
    """`params` plus the run form's values that differ from the deployment's defaults (params win)."""
    if not form:
        return params
    changed = changed_values(form, _form_defaults())
    if changed:
        get_run_logger().info("Parameters changed in the run form: %s", changed)
    merged = _deep_merge(changed, params or {})
    return merged or params


def _form_defaults() -> dict[str, Any]:
    """The values the deployment's run form was registered with; {} outside a deployment's run."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import deployment

    if not deployment.id:
        return {}
    with get_client(sync_client=True) as client:
        schema = client.read_deployment(deployment.id).parameter_openapi_schema or {}
    return defaults_of((schema.get("properties") or {}).get(FORM_FIELD) or {})


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _deep_merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def _check_env(project_path: Path, env: str | None) -> None:
    """Kedro would silently read only `base` for a missing env folder; a run should not."""
    from kedro.framework.project import settings

    conf_source = project_path / settings.CONF_SOURCE
    if env is None or not conf_source.is_dir() or (conf_source / env).is_dir():
        return
    available = sorted(p.name for p in conf_source.iterdir() if p.is_dir())
    raise ValueError(
        f"Kedro env '{env}' does not exist: there is no folder {conf_source / env}; "
        f"available envs: {available}. Fix the deployment's `env` parameter."
    )


def _check_pipeline(pipeline: str) -> None:
    from kedro.framework.project import pipelines

    available = sorted(pipelines.keys())
    if pipeline not in available:
        raise ValueError(
            f"Kedro pipeline '{pipeline}' is not registered by the project in {Path.cwd()}; "
            f"available pipelines: {available}."
        )


def _publish(report: RunReport) -> None:
    try:
        create_markdown_artifact(
            markdown=report.markdown(),
            key=artifact_key(report.pipeline),
            description=report.description(),
        )
    except Exception as exc:  # a report must not hide the run's own outcome
        get_run_logger().warning("Could not publish the run report artifact: %s", exc)
