"""Which nodes a `kedro prefect run` runs: the Prefect tasks the run's filters leave, and the
options typed, for the command that resumes a failed run (run_options.py writes it).

Counting here, before the run starts, lets `--wait` show "0/12 nodes" from the first
line, and a filter naming an unknown node fails before a run is created. The count
uses the flow's own grouping (run/units.py); which nodes a resume starts from is the
run's to say (its report), by Kedro's rule (run/resume.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kedro_prefect_hooks.run_options import LIST_OPTIONS


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
