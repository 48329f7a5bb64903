"""`kedro run`'s options as flow parameters: the one table, and the text they are written in.

The table `FILTERS` gives each filter of `kedro run` its `kedro prefect run` option, its flow
parameter (also `KedroSession.run`'s argument) and its kind; the CLI's options, the types
prefect.yml's `parameters:` presets are checked against, and the resume command derive
from it. The flow's signature stays written out (Prefect builds the run form from it) and a
test holds it equal to the table. Imports nothing of ours: config, the flow, the run and
the trigger side all use it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunFilter:
    """One of `kedro run`'s filters."""

    option: str  # `kedro prefect run --<option>` (dashes for underscores), as `kedro run`'s
    parameter: str  # the flow parameter and the `KedroSession.run` argument it sets
    kind: str  # "names" (comma-separated), "versions" (dataset:version,...) or "flag"
    help: str


FILTERS = (
    RunFilter("tags", "tags", "names", "Only the nodes with any of these tags"),
    RunFilter("nodes", "node_names", "names", "Only these nodes (flow parameter node_names)"),
    RunFilter("from_nodes", "from_nodes", "names", "These nodes and everything downstream of them"),
    RunFilter("to_nodes", "to_nodes", "names", "These nodes and everything upstream of them"),
    RunFilter("namespaces", "namespaces", "names", "Only the nodes in these namespaces"),
    RunFilter("from_inputs", "from_inputs", "names", "The nodes downstream of these datasets"),
    RunFilter("to_outputs", "to_outputs", "names", "The nodes upstream of these datasets"),
    RunFilter(
        "load_versions", "load_versions", "versions", "dataset:version pairs to load, comma-separated."
    ),
    RunFilter(
        "only_missing_outputs", "only_missing_outputs", "flag", "Skip the nodes whose outputs all exist."
    ),
)
KIND_TYPES: dict[str, Any] = {
    "names": list[str] | None,
    "versions": dict[str, str] | None,
    "flag": bool,
}
# `kedro prefect run` option -> the flow parameter of each comma-separated list filter.
LIST_OPTIONS = {f.option: f.parameter for f in FILTERS if f.kind == "names"}
# Flow parameters a deployment may preset, with their types (the flow's signature, by a test).
FLOW_PARAMETERS: dict[str, Any] = {
    "params": dict[str, Any] | None,
    **{f.parameter: KIND_TYPES[f.kind] for f in FILTERS},
    "parameters": dict[str, Any] | None,
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
