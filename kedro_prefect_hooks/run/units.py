"""Which nodes run together in one Prefect task: one per node, per namespace, or per in-memory group.

`memory` follows kedro-airflow's `--group-by memory`: nodes joined by an in-memory
dataset run in one task, so tasks hand each other persisted datasets only, as tasks
in other processes must. Two fixes over it: groups that would depend on each other
in a cycle are merged, and dependencies come from Kedro's own `node_dependencies`.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable
from itertools import chain
from typing import Any

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import Task

from kedro_prefect_hooks.compat import is_memory_dataset_type


def run_node(node: Node, catalog: Any, hook_manager: Any, run_id: str | None) -> None:
    """One node through Kedro's own node runner: node and dataset hooks, loads, the function, saves."""
    Task(node=node, catalog=catalog, hook_manager=hook_manager, is_async=False, run_id=run_id).execute()


class WorkUnit:
    """Nodes that run in one Prefect task, in order, and the units they wait for."""

    def __init__(self, name: str, nodes: list[Node], parents: list[str]):
        self.name = name
        self.nodes = nodes
        self.parents = parents
        self.tags = sorted(set(chain.from_iterable(n.tags for n in nodes)))

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in self.nodes]


def work_units(pipeline: Pipeline, group_by: str, catalog: Any = None) -> list[WorkUnit]:
    """The pipeline's units, parents first. `memory` needs the run's catalog to tell memory datasets.

    Grouping can create a cycle (namespace A feeds a node outside it that feeds A
    again); for namespaces that is a clear error rather than a hung run.
    """
    if group_by == "memory":
        return _ordered(_memory_groups(pipeline, lambda name: in_memory(name, catalog)), group_by)
    by_name = {node.name: node for node in pipeline.nodes}
    groups = {
        g.name: ([by_name[n] for n in g.nodes], list(g.dependencies))
        for g in pipeline.group_nodes_by(group_by)
    }
    return _ordered(
        {name: WorkUnit(name, nodes, parents) for name, (nodes, parents) in groups.items()}, group_by
    )


def in_memory(dataset: str, catalog: Any) -> bool:
    """Whether a dataset lives only in the memory of the process that made it."""
    if dataset == "parameters" or dataset.startswith("params:"):
        return False  # every process reads them from the config
    if catalog is None or dataset not in catalog:
        return True
    try:  # the type without building the dataset (a CLI's catalog is lazy), since Kedro 1.0
        kind = (
            catalog.get_type(dataset) if hasattr(catalog, "get_type") else type(catalog.get(dataset)).__name__
        )
    except Exception:
        return False
    return is_memory_dataset_type(str(kind))


def memory_handoffs(units: list[WorkUnit], pipeline: Pipeline, catalog: Any) -> list[str]:
    """In-memory datasets one unit makes and another reads, or that the pipeline takes as input:
    they cannot cross processes."""
    unit_of = {node.name: unit.name for unit in units for node in unit.nodes}
    producer = {out: node.name for node in pipeline.nodes for out in node.outputs}
    crossing = {
        dataset
        for node in pipeline.nodes
        for dataset in node.inputs
        if in_memory(dataset, catalog)
        and (dataset not in producer or unit_of[producer[dataset]] != unit_of[node.name])
    }
    return sorted(crossing)


def _memory_groups(pipeline: Pipeline, is_memory: Callable[[str], bool]) -> dict[str, WorkUnit]:
    nodes = pipeline.nodes  # topologically sorted
    leader = {node.name: node.name for node in nodes}

    def find(name: str) -> str:
        while leader[name] != name:
            leader[name] = leader[leader[name]]
            name = leader[name]
        return name

    def join(a: str, b: str) -> None:
        leader[find(a)] = find(b)

    producer = {out: node.name for node in nodes for out in node.outputs}
    for node in nodes:
        for dataset in node.inputs:
            if dataset in producer and is_memory(dataset):
                join(node.name, producer[dataset])
    # Groups that depend on each other in a cycle become one (A -memory-> B, A -> C -> B).
    while cycle := _group_cycle(pipeline, find):
        for name in cycle[1:]:
            join(name, cycle[0])
    members: dict[str, list[Node]] = {}
    for node in nodes:
        members.setdefault(find(node.name), []).append(node)
    named = {group: _group_name(group_nodes) for group, group_nodes in members.items()}
    parents = _group_parents(pipeline, find)
    return {
        named[group]: WorkUnit(named[group], group_nodes, sorted(named[p] for p in parents.get(group, ())))
        for group, group_nodes in members.items()
    }


def _group_parents(pipeline: Pipeline, find: Callable[[str], str]) -> dict[str, set[str]]:
    parents: dict[str, set[str]] = {}
    for node, upstream in pipeline.node_dependencies.items():
        for parent in upstream:
            if find(parent.name) != find(node.name):
                parents.setdefault(find(node.name), set()).add(find(parent.name))
    return parents


def _group_cycle(pipeline: Pipeline, find: Callable[[str], str]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(_group_parents(pipeline, find)).prepare()
    except graphlib.CycleError as exc:
        return list(dict.fromkeys(exc.args[1]))
    return None


def _group_name(nodes: list[Node]) -> str:
    return nodes[0].name if len(nodes) == 1 else f"{nodes[0].name} (+{len(nodes) - 1})"


def _ordered(units: dict[str, WorkUnit], group_by: str) -> list[WorkUnit]:
    sorter = graphlib.TopologicalSorter({name: unit.parents for name, unit in units.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ValueError(
            f"`run.group_by: {group_by}` makes groups that depend on each other ({cycle}); "
            "use `group_by: none` for this pipeline, or keep each namespace's nodes together"
        ) from None
    return [units[name] for name in order]
