"""Which nodes a `kedro prefect run` runs: `kedro run`'s filter options as flow parameters,
the Prefect tasks they leave, and the command that resumes a failed run.

Counting here, before the run starts, lets `--wait` show "0/12 nodes" from the first
line, and a filter naming an unknown node fails before a run is created.
"""

from __future__ import annotations

import shlex
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
    """The Prefect tasks a run will make: one per node, or per namespace with `group_by: namespace`."""

    heads: dict[str, list[str]] | None  # task name -> where a resume starts; None: the pipeline did not load
    label: str = "nodes"  # what a task is, for "3/12 nodes completed"
    at_most: bool = False  # --only-missing-outputs: Kedro skips the nodes whose outputs exist

    @property
    def total(self) -> int | None:
        return None if self.heads is None else len(self.heads)

    def resume_nodes(self, failed_tasks: list[str]) -> list[str] | None:
        """The nodes to pass to --from-nodes after these tasks failed: a namespace group's first
        nodes; None when a group's nodes are not known here."""
        if self.heads is None and self.label != "nodes":
            return None
        heads = self.heads or {}
        return list(dict.fromkeys(n for task in failed_tasks for n in heads.get(task, [task])))


def load_plan(pipeline_name: str, parameters: dict[str, Any], group_by: str) -> Plan:
    """The plan of a run of the project's pipeline `pipeline_name`. If the pipeline registry does
    not load here (code only the worker's environment can import), the count stays unknown."""
    from kedro.framework.project import pipelines

    from kedro_prefect_hooks.compat import all_pipelines_visible

    try:
        with all_pipelines_visible(pipelines):
            pipeline = pipelines[pipeline_name]
    except Exception:
        return Plan(
            None, "nodes" if group_by == "none" else "tasks", bool(parameters.get("only_missing_outputs"))
        )
    return plan_run(pipeline, parameters, group_by)


def plan_run(pipeline: Any, parameters: dict[str, Any], group_by: str) -> Plan:
    """The tasks `pipeline` makes once the run's filters (flow `parameters`) apply.

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
    heads = {}
    for group in filtered.group_nodes_by(group_by):
        first = filtered.only_nodes(*group.nodes).grouped_nodes[0] if len(group.nodes) > 1 else []
        heads[group.name] = sorted(n.name for n in first) or list(group.nodes)
    return Plan(
        heads, "nodes" if group_by == "none" else "tasks", bool(parameters.get("only_missing_outputs"))
    )


def resume_command(pipeline: str, options: list[tuple[str, str]], from_nodes: list[str]) -> str:
    """`kedro prefect run <pipeline> <the run's options> --from-nodes a,b`; a --from-nodes given is replaced."""
    parts = ["kedro", "prefect", "run", pipeline]
    for option, value in options:
        if option != "--from-nodes":
            parts += [option] if value == "" else [option, value]
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
