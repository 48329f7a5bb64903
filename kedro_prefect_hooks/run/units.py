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

    def __init__(self, name: str, nodes: list[Node], parents: list[str], pool_tag: str | None = None):
        self.name = name
        self.nodes = nodes
        self.parents = parents
        self.pool_tag = pool_tag  # the node tag whose work_pool runs this unit (a child run); None: here
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
        return _ordered(
            _memory_groups(pipeline, lambda name: in_memory(name, catalog)), "`run.group_by: memory`"
        )
    by_name = {node.name: node for node in pipeline.nodes}
    groups = {
        g.name: ([by_name[n] for n in g.nodes], list(g.dependencies))
        for g in pipeline.group_nodes_by(group_by)
    }
    return _ordered(
        {name: WorkUnit(name, nodes, parents) for name, (nodes, parents) in groups.items()},
        f"`run.group_by: {group_by}`",
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


def memory_handoffs(
    units: list[WorkUnit],
    pipeline: Pipeline,
    catalog: Any,
    between: Callable[[WorkUnit | None, WorkUnit], bool] = lambda made_by, used_by: True,
) -> list[str]:
    """In-memory datasets one unit makes and another reads, or that the pipeline takes as input
    (made by None), for the pairs of units `between` selects: they cannot cross processes.
    Each as "<dataset> (<producer> -> <consumer>)"."""
    unit_of = {node.name: unit for unit in units for node in unit.nodes}
    producer = {out: node.name for node in pipeline.nodes for out in node.outputs}
    crossing = []
    for node in pipeline.nodes:
        for dataset in node.inputs:
            made_by = unit_of[producer[dataset]] if dataset in producer else None
            if (
                in_memory(dataset, catalog)
                and made_by is not unit_of[node.name]
                and between(made_by, unit_of[node.name])
            ):
                source = f"node {producer[dataset]}" if dataset in producer else "the run's input"
                crossing.append(f"'{dataset}' ({source} -> node {node.name})")
    return sorted(set(crossing))


def pool_units(
    pipeline: Pipeline, units: list[WorkUnit], pool_tag_of: Callable[[Node], str | None]
) -> list[WorkUnit]:
    """`units` with the nodes of pool tags taken out: nodes of one pool tag joined by an edge form
    one unit (one child run); the other units keep their remaining nodes and their names."""
    tag_of = {node.name: pool_tag_of(node) for node in pipeline.nodes}
    if not any(tag_of.values()):
        return units
    leader = {name: name for name in tag_of}

    def find(name: str) -> str:
        while leader[name] != name:
            name = leader[name]
        return name

    for node, upstream in pipeline.node_dependencies.items():
        for parent in upstream:
            if tag_of[node.name] is not None and tag_of[node.name] == tag_of[parent.name]:
                leader[find(node.name)] = find(parent.name)
    members: dict[str, list[Node]] = {}
    group_of: dict[str, str] = {}
    for unit in units:
        for node in unit.nodes:
            key = unit.name if tag_of[node.name] is None else f"pool {find(node.name)}"
            members.setdefault(key, []).append(node)
            group_of[node.name] = key
    names = {
        key: key if not key.startswith("pool ") else _group_name(nodes) for key, nodes in members.items()
    }
    parents: dict[str, set[str]] = {key: set() for key in members}
    for node, upstream in pipeline.node_dependencies.items():
        parents[group_of[node.name]] |= {group_of[p.name] for p in upstream} - {group_of[node.name]}
    regrouped = {
        names[key]: WorkUnit(
            names[key],
            nodes,
            sorted(names[p] for p in parents[key]),
            tag_of[nodes[0].name] if key.startswith("pool ") else None,
        )
        for key, nodes in members.items()
    }
    return _ordered(regrouped, "`run.node_tags.<tag>.work_pool`")


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


def _ordered(units: dict[str, WorkUnit], grouping: str) -> list[WorkUnit]:
    sorter = graphlib.TopologicalSorter({name: unit.parents for name, unit in units.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ValueError(
            f"{grouping} makes groups that depend on each other ({cycle}); use `group_by: none` for "
            "this pipeline, or keep each group's nodes together"
        ) from None
    return [units[name] for name in order]
