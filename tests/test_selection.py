"""`kedro prefect run`'s filter options: flow parameters, the tasks a run makes, the resume command."""

from __future__ import annotations

import shlex

import pytest
from kedro.pipeline import Pipeline, node, pipeline

from kedro_prefect_hooks.run_options import (
    command_options,
    filter_parameters,
    params_text,
    parse_load_versions,
    resume_command,
    split_names,
)
from kedro_prefect_hooks.trigger.selection import filter_run, plan_problem, plan_run
from kedro_prefect_hooks.trigger.start import parse_params


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


def plan(pipeline: Pipeline, parameters: dict, group_by: str, catalog=None):
    return plan_run(filter_run(pipeline, parameters), parameters, group_by, catalog)


def test_the_plan_counts_what_the_filters_leave():
    whole = project_pipeline()
    assert plan(whole, {}, "none").total == 6
    assert plan(whole, {"tags": ["t"]}, "none").total == 1
    assert plan(whole, {"from_nodes": ["alpha.first"]}, "none").total == 2
    assert (
        plan(whole, {"namespaces": ["beta"], "node_names": ["beta.first", "beta.second"]}, "none").total == 2
    )
    grouped = plan(whole, {}, "namespace")
    assert (grouped.total, grouped.label) == (4, "tasks")  # seed, tagged, alpha, beta
    with pytest.raises(ValueError, match="nope"):
        filter_run(whole, {"node_names": ["nope"]})


def test_memory_groups_are_counted_with_the_flows_own_grouping():
    """Issue 18, 3: the plan passed "memory" to Kedro's group_nodes_by, which knows none/namespace."""
    from kedro.io import DataCatalog
    from kedro_datasets.json import JSONDataset

    catalog = DataCatalog(datasets={"seed": JSONDataset(filepath="seed.json")})
    whole = project_pipeline()  # alpha.y, beta.y, side...: in memory; seed persisted
    grouped = plan(whole, {}, "memory", catalog)
    assert (grouped.total, grouped.label) == (4, "tasks")  # seed, tagged, alpha's chain, beta's chain
    assert plan(whole, {"from_nodes": ["alpha.first"]}, "memory", catalog).total == 1


def test_a_plan_problem_mentions_filters_only_when_there_are_some():
    problem = ValueError("`run.group_by: namespace` makes groups that depend on each other (a -> b).")
    assert plan_problem("p", problem, filtered=False) == (
        "pipeline 'p': `run.group_by: namespace` makes groups that depend on each other (a -> b). No run was created."
    )
    assert plan_problem("p", ValueError("no node is left"), filtered=True).startswith(
        "pipeline 'p' with these filters: no node is left."
    )


def test_a_failed_runs_command_carries_its_options_and_params_read_back_as_given():
    params = {"start": 4, "model": {"size": 0.3, "name": "two words", "code": "007"}, "on": True}
    options = command_options(
        "prod",
        params,
        {
            "tags": ["t1", "t2"],
            "to_outputs": ["o"],
            "from_nodes": ["f"],
            "load_versions": {"ds": "2026-01-01T00.00.00.000Z"},
            "only_missing_outputs": True,
            "node_names": None,
        },
    )
    command = resume_command("p", options, ["a_fail", "b_mid"])
    assert command == (
        "kedro prefect run p --env prod --params 'start=4,model.size=0.3,model.name=two words,"
        "model.code='\"'\"'007'\"'\"',on=true' --tags t1,t2 --to-outputs o "
        "--load-versions ds:2026-01-01T00.00.00.000Z --only-missing-outputs --from-nodes a_fail,b_mid"
    )
    words = shlex.split(command)
    assert parse_params(words[words.index("--params") + 1]) == params
    assert params_text({"xs": [1, 2]}) is None and params_text({"a": "b,c"}) is None
    again = resume_command("p", options, [])  # no node completed: the same run again
    assert "--from-nodes f --to-outputs o" in again and again.count("--from-nodes") == 1


def test_the_resume_command_repeats_the_run_options_with_its_own_from_nodes():
    given = [("--params", "a=1,b=two words"), ("--from-nodes", "x"), ("--wait", ""), ("--timeout", "60")]
    assert resume_command("__default__", given, ["boom", "alpha.first"]) == (
        "kedro prefect run __default__ --params 'a=1,b=two words' --wait --timeout 60 "
        "--from-nodes boom,alpha.first"
    )


def test_the_cli_options_and_the_flow_parameters_come_from_one_table():
    """`kedro run`'s filters are written once (run_options.FILTERS): the run command's options
    and what they set are derived, so a filter added there reaches the CLI, the presets and
    the resume command."""
    from kedro_prefect_hooks.cli import run
    from kedro_prefect_hooks.run_options import FILTERS, FLOW_PARAMETERS

    options = {param.name: param for param in run.params}
    for run_filter in FILTERS:
        assert run_filter.parameter in FLOW_PARAMETERS
        assert options[run_filter.option].is_flag == (run_filter.kind == "flag")
        assert "--" + run_filter.option.replace("_", "-") in options[run_filter.option].opts
    given = {
        f.option: ("a,b" if f.kind == "names" else "ds:v1" if f.kind == "versions" else True) for f in FILTERS
    }
    assert set(filter_parameters(given)) == {f.parameter for f in FILTERS}
