"""Which nodes a `kedro prefect run` runs: `kedro run`'s filter options as flow parameters,
the Prefect tasks they leave, and the command that resumes a failed run.

Counting here, before the run starts, lets `--wait` show "0/12 nodes" from the first
line, and a filter naming an unknown node fails before a run is created. The count
uses the flow's own grouping (run/units.py); which nodes a resume starts from is the
run's to say (its report), by Kedro's rule (run/resume.py).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# `kedro prefect run` option -> the flow parameter (and `KedroSession.run` argument) it sets.
LIST_OPTIONS = {
    "tags": "tags",
    "nodes": "node_names",
    "from_nodes": "from_nodes",
    "to_nodes": "to_nodes",
    "namespaces": "namespaces",
    "from_inputs": "from_inputs",
    "to_outputs": "to_outputs",
}


def split_names(text: str) -> list[str]:
    """`a, b,,c` -> [a, b, c]: Kedro's comma-separated option values."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_load_versions(text: str) -> dict[str, str]:
    """`kedro run --load-versions` syntax: `dataset:version,other:version`."""
    versions = {}
    for item in split_names(text):
        name, sep, version = item.partition(":")
        if not sep or not name.strip() or not version.strip():
            raise ValueError(f"{item!r} is not dataset:version")
        versions[name.strip()] = version.strip()
    return versions


def filter_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """Flow parameters for the filter options given (empty ones are left to the deployment)."""
    parameters: dict[str, Any] = {}
    for option, parameter in LIST_OPTIONS.items():
        if names := split_names(options.get(option) or ""):
            parameters[parameter] = names
    if options.get("load_versions"):
        parameters["load_versions"] = parse_load_versions(options["load_versions"])
    if options.get("only_missing_outputs"):
        parameters["only_missing_outputs"] = True
    return parameters


@dataclass
class Plan:
    """How many Prefect tasks a run will make: one per node, or per group with `group_by`."""

    total: int | None  # None: not known here (the pipeline or the catalog did not load)
    label: str = "nodes"  # what a task is, for "3/12 nodes completed"
    at_most: bool = False  # --only-missing-outputs: Kedro skips the nodes whose outputs exist


def load_plan(
    pipeline_name: str, parameters: dict[str, Any], group_by: str, catalog: Callable[[], Any] | None = None
) -> Plan:
    """The plan of a run of the project's pipeline `pipeline_name`. If the pipeline registry does
    not load here (code only the worker's environment can import), the count stays unknown.
    `catalog` builds the project's catalog, which `group_by: memory` needs to tell in-memory
    datasets; if it fails here (credentials only the worker has), the count stays unknown too."""
    from kedro.framework.project import pipelines

    from kedro_prefect_hooks.compat import all_pipelines_visible

    label = "nodes" if group_by == "none" else "tasks"
    at_most = bool(parameters.get("only_missing_outputs"))
    try:
        with all_pipelines_visible(pipelines):
            pipeline = pipelines[pipeline_name]
    except Exception:
        return Plan(None, label, at_most)
    filtered = filter_run(pipeline, parameters)
    if group_by != "memory":
        return plan_run(filtered, parameters, group_by)
    try:
        built = catalog() if catalog is not None else None
    except Exception:
        built = None
    return (
        plan_run(filtered, parameters, group_by, built) if built is not None else Plan(None, label, at_most)
    )


def filter_run(pipeline: Any, parameters: dict[str, Any]) -> Any:
    """`pipeline` once the run's filters (flow `parameters`) apply, as `KedroSession.run` applies them.

    ValueError (Kedro's message) for a filter naming an unknown node, or leaving no node.
    """
    from kedro_prefect_hooks.compat import filter_pipeline

    filtered = filter_pipeline(
        pipeline,
        namespaces=parameters.get("namespaces"),
        **{p: parameters.get(p) for p in LIST_OPTIONS.values() if p != "namespaces"},
    )
    if not filtered.nodes:
        raise ValueError("no node is left once the filters apply")
    return filtered


def plan_run(filtered: Any, parameters: dict[str, Any], group_by: str, catalog: Any = None) -> Plan:
    """The tasks a filtered pipeline makes: the flow's own grouping (run/units.py), so the count
    is the run's. `group_by: memory` needs the run's `catalog`."""
    from kedro_prefect_hooks.run.units import work_units

    units = work_units(filtered, group_by, catalog)
    return Plan(
        len(units), "nodes" if group_by == "none" else "tasks", bool(parameters.get("only_missing_outputs"))
    )


def plan_problem(pipeline: str, problem: Exception, filtered: bool) -> str:
    """Why no run was created: Kedro's message for a filter, or a grouping that cannot work."""
    text = str(problem).strip().rstrip(".")
    what = f"pipeline '{pipeline}' with these filters" if filtered else f"pipeline '{pipeline}'"
    return f"{what}: {text}. No run was created."


def project_catalog(project_path: Any, env: str | None, params: dict[str, Any] | None) -> Any:
    """The project's catalog as a run in `env` with runtime `params` builds it (datasets stay lazy)."""
    from kedro.config import MissingConfigException
    from kedro.framework.project import settings

    from kedro_prefect_hooks.project import project_config_loader

    loader = project_config_loader(project_path, env, params)
    try:
        credentials = loader["credentials"]
    except MissingConfigException:
        credentials = {}
    return settings.DATA_CATALOG_CLASS.from_config(catalog=loader["catalog"], credentials=credentials)


def command_options(
    env: str | None, params: dict[str, Any] | None, flow_parameters: dict[str, Any]
) -> list[tuple[str, str]]:
    """The `kedro prefect run` options that make a run with these flow parameters, for the
    command a failed run's message prints. Runtime params that `--params` cannot express
    (lists, commas) are left out."""
    options: list[tuple[str, str]] = [("--env", env)] if env else []
    if params and (text := params_text(params)):
        options.append(("--params", text))
    for option, parameter in LIST_OPTIONS.items():
        if names := flow_parameters.get(parameter):
            options.append(("--" + option.replace("_", "-"), ",".join(names)))
    if versions := flow_parameters.get("load_versions"):
        options.append(("--load-versions", ",".join(f"{k}:{v}" for k, v in versions.items())))
    if flow_parameters.get("only_missing_outputs"):
        options.append(("--only-missing-outputs", ""))
    return options


def params_text(params: dict[str, Any], prefix: str = "") -> str | None:
    """Kedro's `--params` text for `params` (`a=1,b.c=x`); None if a value cannot be written there."""
    import yaml

    parts = []
    for key, value in params.items():
        if isinstance(value, dict):
            nested = params_text(value, f"{prefix}{key}.")
            if nested is None:
                return None
            parts.append(nested)
            continue
        if isinstance(value, (list, tuple)) or "," in str(value) or any(c in str(key) for c in ",=."):
            return None
        text = yaml.safe_dump(value, default_flow_style=True, width=10**9).removesuffix("\n...\n").strip()
        if yaml.safe_load(text) != value:
            return None
        parts.append(f"{prefix}{key}={text}")
    return ",".join(parts)


def resume_command(pipeline: str, options: list[tuple[str, str]], from_nodes: list[str]) -> str:
    """`kedro prefect run <pipeline> <the run's options> --from-nodes a,b`; a --from-nodes given is
    replaced. No `from_nodes`: the same command again."""
    parts = ["kedro", "prefect", "run", pipeline]
    for option, value in options:
        if option != "--from-nodes" or not from_nodes:
            parts += [option] if value == "" else [option, value]
    if from_nodes:
        parts += ["--from-nodes", ",".join(from_nodes)]
    return shlex.join(parts)


def given_options(context: Any) -> list[tuple[str, str]]:
    """The options typed on the command line (a click context), as (--option, value), for the resume command."""
    import click
    from click.core import ParameterSource

    given = []
    for param in context.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        if context.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
            continue
        option = max(param.opts, key=len)
        value = context.params[param.name]
        if param.is_flag:
            given.append((option, ""))
        elif param.multiple:
            given += [(option, str(item)) for item in value]
        else:
            given.append((option, f"{value:g}" if isinstance(value, float) else str(value)))
    return given
