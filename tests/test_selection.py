"""`kedro prefect run`'s filter options: flow parameters, the tasks a run makes, the resume command."""

from __future__ import annotations

import pytest
from kedro.pipeline import Pipeline, node, pipeline

from kedro_prefect_hooks.selection import (
    filter_parameters,
    parse_load_versions,
    plan_run,
    resume_command,
    split_names,
)


def inc(x):
    return x + 1


def project_pipeline() -> Pipeline:
    """seed -> (alpha.first -> alpha.second), (beta.first -> beta.second); `tagged` on the side."""
    base = Pipeline([node(inc, "x", "y", name="first"), node(inc, "y", "z", name="second")])
    return (
        Pipeline(
            [node(inc, "start", "seed", name="seed"), node(inc, "start", "side", name="tagged", tags=["t"])]
        )
        + pipeline(base, namespace="alpha", inputs={"x": "seed"})
        + pipeline(base, namespace="beta", inputs={"x": "seed"})
    )


def test_options_map_to_the_flow_parameters_kedro_run_would_use():
    given = {
        "tags": "a, b",
        "nodes": "n1,,n2",
        "from_nodes": "f",
        "to_nodes": "",
        "namespaces": "ns",
        "from_inputs": "i",
        "to_outputs": "o",
        "load_versions": "ds:2026-01-01T00.00.00.000Z, other:v:2",
        "only_missing_outputs": True,
    }
    assert filter_parameters(given) == {
        "tags": ["a", "b"],
        "node_names": ["n1", "n2"],
        "from_nodes": ["f"],
        "namespaces": ["ns"],
        "from_inputs": ["i"],
        "to_outputs": ["o"],
        "load_versions": {"ds": "2026-01-01T00.00.00.000Z", "other": "v:2"},
        "only_missing_outputs": True,
    }
    assert filter_parameters({"tags": "", "only_missing_outputs": False}) == {}
    assert split_names(" a ,b, ") == ["a", "b"]
    with pytest.raises(ValueError, match="'ds' is not dataset:version"):
        parse_load_versions("ds")


def test_the_plan_counts_what_the_filters_leave():
    whole = project_pipeline()
    assert plan_run(whole, {}, "none").total == 6
    assert plan_run(whole, {"tags": ["t"]}, "none").total == 1
    assert plan_run(whole, {"from_nodes": ["alpha.first"]}, "none").total == 2
    assert (
        plan_run(whole, {"namespaces": ["beta"], "node_names": ["beta.first", "beta.second"]}, "none").total
        == 2
    )
    grouped = plan_run(whole, {}, "namespace")
    assert (grouped.total, grouped.label) == (4, "tasks")  # seed, tagged, alpha, beta
    with pytest.raises(ValueError, match="nope"):
        plan_run(whole, {"node_names": ["nope"]}, "none")


def test_a_resume_starts_at_the_failed_node_or_at_the_first_nodes_of_its_group():
    whole = project_pipeline()
    assert plan_run(whole, {}, "none").resume_nodes(["alpha.second", "beta.first"]) == [
        "alpha.second",
        "beta.first",
    ]
    assert plan_run(whole, {}, "namespace").resume_nodes(["alpha"]) == ["alpha.first"]


def test_the_resume_command_repeats_the_run_options_with_its_own_from_nodes():
    given = [("--params", "a=1,b=two words"), ("--from-nodes", "x"), ("--wait", ""), ("--timeout", "60")]
    assert resume_command("__default__", given, ["boom", "alpha.first"]) == (
        "kedro prefect run __default__ --params 'a=1,b=two words' --wait --timeout 60 "
        "--from-nodes boom,alpha.first"
    )
