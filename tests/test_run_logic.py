"""Pure pieces of a flow run: grouping nodes into tasks, task options per tag, the run report."""

from __future__ import annotations

import re

import pytest
from kedro.pipeline import Pipeline, node, pipeline

from kedro_prefect_hooks.config import ConfigError, parse_config
from kedro_prefect_hooks.run.report import RunReport, artifact_key, describe_dataset
from kedro_prefect_hooks.run.units import work_units


def inc(x):
    return x + 1


def test_one_unit_per_node_parents_first():
    nodes = Pipeline([node(inc, "b", "c", name="second"), node(inc, "a", "b", name="first")])
    units = work_units(nodes, "none")
    assert [(u.name, u.parents) for u in units] == [("first", []), ("second", ["first"])]


def test_namespace_groups_keep_their_nodes_in_order():
    base = Pipeline(
        [node(inc, "x", "y", name="one", tags=["t1"]), node(inc, "y", "z", name="two", tags=["t2"])]
    )
    whole = Pipeline([node(inc, "s", "seed", name="seed")]) + pipeline(
        base, namespace="ns.inner", inputs={"x": "seed"}
    )
    units = work_units(whole, "namespace")
    assert [u.name for u in units] == ["seed", "ns"]
    grouped = units[1]
    assert [n.name for n in grouped.nodes] == ["ns.inner.one", "ns.inner.two"]
    assert grouped.parents == ["seed"] and grouped.tags == ["t1", "t2"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Kedro warns about the interrupted namespace too
def test_namespace_groups_that_feed_each_other_are_an_error():
    cyclic = Pipeline(
        [
            node(inc, "a", "ns.b", name="first", namespace="ns"),
            node(inc, "ns.b", "c", name="outside"),
            node(inc, "c", "ns.d", name="second", namespace="ns"),
        ]
    )
    with pytest.raises(ValueError, match=r"depend on each other.*group_by: none"):
        work_units(cyclic, "namespace")


def test_task_options_from_defaults_and_tags():
    config = parse_config(
        {
            "defaults": {
                "run": {
                    "retries": 1,
                    "timeout_seconds": 60,
                    "node_tags": {
                        "flaky": {"retries": 3},
                        "slow": {"timeout_seconds": 3600},
                        "flakier": {"retries": 5},
                    },
                }
            },
        }
    )
    run = config.options_for("any").run
    assert run.task_options(set()).model_dump(
        include={"retries", "retry_delay_seconds", "timeout_seconds"}
    ) == {
        "retries": 1,
        "retry_delay_seconds": 0,
        "timeout_seconds": 60,
    }
    assert run.task_options({"slow"}).timeout_seconds == 3600
    both = run.task_options({"flaky", "flakier", "other"})
    assert (both.retries, both.timeout_seconds) == (5, 60)  # the largest of the matching tags


def test_per_pipeline_run_options_merge_key_by_key():
    config = parse_config(
        {
            "defaults": {"run": {"max_workers": 3, "node_tags": {"a": {"retries": 1}}}},
            "deployments": {"p": {"run": {"task_runner": "threads", "node_tags": {"b": {"retries": 2}}}}},
        }
    )
    run = config.options_for("p").run
    assert (run.task_runner, run.max_workers) == ("threads", 3)
    assert set(run.node_tags) == {"a", "b"}
    assert config.options_for("other").run.task_runner == "sequential"  # the default, as `kedro run`


@pytest.mark.parametrize(
    "run",
    [
        {"task_runner": "processes"},
        {"max_workers": 0},
        {"group_by": "layer"},
        {"node_tags": {"t": {"retries": -1}}},
        {"retry": 2},
    ],
)
def test_bad_run_options_are_config_errors(run):
    from kedro_prefect_hooks.config import ConfigError

    with pytest.raises(ConfigError, match=r"defaults\.run"):
        parse_config({"defaults": {"run": run}})


def test_report_lists_node_states_and_written_datasets():
    from kedro.io import MemoryDataset
    from kedro_datasets.json import JSONDataset

    report = RunReport("data_science", "local", ["a", "b", "c"])
    report.started("a")
    report.finished("a", 0.25)
    report.started("b")
    report.finished("b", 0.5, ValueError("bad | input"))
    report.written.append(describe_dataset("out", JSONDataset(filepath="data/out.json")))
    assert describe_dataset("mem", MemoryDataset()) is None
    text = report.markdown()
    assert "| a | completed | 0.250 | 1 |" in text
    assert "| b | failed: ValueError: bad \\| input | 0.500 | 1 |" in text
    assert "| c | not run | 0.000 | 0 |" in text
    assert "3 (1 completed, 1 failed, 1 not run)" in text
    assert "| out | JSONDataset | data/out.json |" in text


def test_artifact_keys_are_what_prefect_accepts():
    assert artifact_key("__default__") == "kedro-default"
    assert artifact_key("Data Science.v2") == "kedro-data-science-v2"


def test_datasets_are_released_once_no_later_node_loads_them():
    from collections import Counter
    from itertools import chain

    from kedro_prefect_hooks.run.runner import _release_datasets

    whole = Pipeline(
        [
            node(inc, "a", "b", name="n1"),
            node(inc, "b", "c", name="n2"),
            node(inc, "b", "d", name="n3"),
        ]
    )
    released = []

    class Catalog:
        def release(self, name):
            released.append(name)

    counts = Counter(chain.from_iterable(n.inputs for n in whole.nodes))
    by_name = {n.name: n for n in whole.nodes}
    for name in ("n1", "n2"):
        _release_datasets(by_name[name], Catalog(), counts, whole.inputs(), whole.outputs())
    assert released == []  # "b" is still needed by n3; "a" is a pipeline input, "c" an output
    _release_datasets(by_name["n3"], Catalog(), counts, whole.inputs(), whole.outputs())
    assert released == ["b"]


def test_memory_groups_join_nodes_through_in_memory_datasets_only():
    from kedro.io import DataCatalog, MemoryDataset
    from kedro_datasets.json import JSONDataset

    catalog = DataCatalog(
        datasets={"persisted": JSONDataset(filepath="p.json"), "declared_mem": MemoryDataset()}
    )
    whole = Pipeline(
        [
            node(inc, "params:x", "free", name="a"),  # "free" is not in the catalog: memory
            node(inc, "free", "persisted", name="b"),
            node(inc, "persisted", "declared_mem", name="c"),
            node(inc, "declared_mem", "out", name="d"),
            node(inc, "params:x", "persisted_too", name="e"),
        ]
    )
    catalog["persisted_too"] = JSONDataset(filepath="q.json")
    units = {u.name: u for u in work_units(whole, "memory", catalog)}
    assert {name: u.node_names for name, u in units.items()} == {
        "a (+1)": ["a", "b"],
        "c (+1)": ["c", "d"],
        "e": ["e"],
    }
    assert units["c (+1)"].parents == ["a (+1)"]


def test_memory_groups_that_would_depend_on_each_other_are_merged():
    """A -memory-> B and A -> C -> B: grouping A with B alone would make a cycle with C (kedro-airflow's bug)."""
    from kedro.io import DataCatalog
    from kedro_datasets.json import JSONDataset

    catalog = DataCatalog(
        datasets={"f1": JSONDataset(filepath="1.json"), "f2": JSONDataset(filepath="2.json")}
    )
    cyclic = Pipeline(
        [
            node(lambda x: (x, x), "params:x", ["mem", "f1"], name="A"),
            node(inc, "f1", "f2", name="C"),
            node(lambda m, f: m, ["mem", "f2"], "out", name="B"),
        ]
    )
    [unit] = work_units(cyclic, "memory", catalog)
    assert sorted(unit.node_names) == ["A", "B", "C"]


def test_in_memory_handoffs_between_units_are_named():
    from kedro.io import DataCatalog

    from kedro_prefect_hooks.run.units import memory_handoffs

    chain = Pipeline([node(inc, "params:x", "mem", name="one"), node(inc, "mem", "out", name="two")])
    catalog = DataCatalog()
    assert memory_handoffs(work_units(chain, "none", catalog), chain, catalog) == [
        "'mem' (node one -> node two)"
    ]
    assert memory_handoffs(work_units(chain, "memory", catalog), chain, catalog) == []


def test_connected_nodes_of_a_pool_tag_form_one_unit_and_independent_ones_their_own():
    from kedro_prefect_hooks.run.units import pool_units

    pipeline = Pipeline(
        [
            node(inc, "params:x", "a", name="prep"),
            node(inc, "a", "b", name="gpu_1", tags=["gpu"]),
            node(inc, "b", "c", name="gpu_2", tags=["gpu"]),
            node(inc, "a", "d", name="gpu_alone", tags=["gpu"]),
            node(lambda c, d: c + d, ["c", "d"], "e", name="post"),
        ]
    )
    options = parse_config(
        {"defaults": {"run": {"node_tags": {"gpu": {"work_pool": {"name": "g"}}}}}}
    ).defaults.run
    units = pool_units(pipeline, work_units(pipeline, "none"), lambda n: options.pool_tag(n.name, n.tags))
    by_name = {u.name: u for u in units}
    assert {name: (u.node_names, u.pool_tag) for name, u in by_name.items()} == {
        "prep": (["prep"], None),
        "gpu_1 (+1)": (["gpu_1", "gpu_2"], "gpu"),
        "gpu_alone": (["gpu_alone"], "gpu"),
        "post": (["post"], None),
    }
    assert by_name["post"].parents == ["gpu_1 (+1)", "gpu_alone"]
    assert units[0].name == "prep" and units[-1].name == "post"


def test_a_pool_group_that_would_loop_through_another_node_is_refused():
    from kedro_prefect_hooks.run.units import pool_units

    pipeline = Pipeline(
        [
            node(inc, "params:x", "a", name="gpu_1", tags=["gpu"]),
            node(inc, "a", "b", name="cpu"),
            node(lambda x, y: x, ["a", "b"], "c", name="gpu_2", tags=["gpu"]),
        ]
    )
    with pytest.raises(
        ValueError, match=re.escape("run.node_tags.<tag>.work_pool` makes groups that depend on each other")
    ):
        pool_units(pipeline, work_units(pipeline, "none"), lambda n: "gpu" if "gpu" in n.tags else None)


def test_a_node_on_two_pools_is_refused_naming_it():
    options = parse_config(
        {
            "defaults": {
                "run": {"node_tags": {"a": {"work_pool": {"name": "p"}}, "b": {"work_pool": {"name": "q"}}}}
            }
        }
    ).defaults.run
    with pytest.raises(ValueError, match="node 'n' carries tags \\['a', 'b'\\]"):
        options.pool_tag("n", {"a", "b", "c"})
    assert options.pool_tag("n", {"a", "c"}) == "a" and options.pool_tag("n", {"c"}) is None


def test_a_node_tag_pool_needs_a_name():
    with pytest.raises(ConfigError, match="needs a `name`"):
        parse_config({"defaults": {"run": {"node_tags": {"gpu": {"work_pool": {"job_variables": {}}}}}}})


def test_under_dask_the_default_grouping_is_memory():
    assert parse_config({"defaults": {"run": {"task_runner": "dask"}}}).defaults.run.grouping == "memory"
    assert parse_config({}).defaults.run.grouping == "none"
    dask = parse_config({"defaults": {"run": {"task_runner": "dask", "group_by": "namespace"}}}).defaults.run
    assert dask.grouping == "namespace"


def test_during_a_run_the_console_gets_plain_lines_and_gets_its_rich_handler_back():
    import io
    import logging

    from kedro.logging import RichHandler

    from kedro_prefect_hooks.run.console import plain_console

    root = logging.getLogger()
    rich = RichHandler()
    stream = io.StringIO()
    rich.console.file = stream
    root.addHandler(rich)
    try:
        with plain_console():
            assert rich not in root.handlers
            logging.getLogger("kedro.test").warning("Running node: double")
        assert rich in root.handlers
    finally:
        root.removeHandler(rich)
    assert stream.getvalue().endswith("WARNING kedro.test: Running node: double\n")


@pytest.mark.parametrize("capturing_before", [False, True])
def test_a_run_captures_warnings_for_its_logs_and_puts_the_capture_back(capturing_before):
    import logging

    from prefect.logging.handlers import APILogHandler

    from kedro_prefect_hooks.run.logs import _capturing_warnings, kedro_logs_to_prefect

    def api_handlers():
        return [h for h in logging.getLogger("py.warnings").handlers if isinstance(h, APILogHandler)]

    was = _capturing_warnings()
    logging.captureWarnings(capturing_before)
    try:
        with kedro_logs_to_prefect(["kedro"]):
            assert _capturing_warnings() and len(api_handlers()) == 1
        assert _capturing_warnings() is capturing_before and api_handlers() == []
    finally:
        logging.captureWarnings(was)


def test_the_resume_point_is_the_set_kedros_own_message_names(caplog):
    """Issue 18, 2: we named the failed node alone; Kedro's rule restarts every unfinished branch,
    each from a node whose inputs are persisted (b_end's input is in memory: from b_mid)."""
    import logging

    from kedro.io import DataCatalog
    from kedro.runner import SequentialRunner
    from kedro_datasets.json import JSONDataset

    from kedro_prefect_hooks.run.resume import resume_from

    catalog = DataCatalog(
        datasets={"src": JSONDataset(filepath="src.json"), "b_out": JSONDataset(filepath="b.json")}
    )
    branches = Pipeline(
        [
            node(inc, "params:start", "src", name="n_src"),
            node(inc, "src", "a_out", name="a_fail"),
            node(inc, "src", "b_mem", name="b_mid"),
            node(inc, "b_mem", "b_out", name="b_end"),
        ]
    )
    for ds in branches.datasets():  # as the runner does before it runs: every dataset built
        catalog.get(ds, fallback_to_runtime_pattern=True)
    done = [n for n in branches.nodes if n.name == "n_src"]
    with caplog.at_level(logging.WARNING):
        SequentialRunner()._suggest_resume_scenario(branches, done, catalog)
    assert '--from-nodes "a_fail,b_mid"' in caplog.text
    assert resume_from(branches, ["n_src"], catalog) == ["a_fail", "b_mid"]
    assert resume_from(branches, [], catalog) == []  # nothing ran: run it again
    assert resume_from(branches, [n.name for n in branches.nodes], catalog) == []


def test_only_a_dataset_with_a_version_counts_as_versioned():
    """Issue 18, 1: every kedro-datasets dataset is an AbstractVersionedDataset."""
    from kedro.io import AbstractVersionedDataset, Version
    from kedro_datasets.json import JSONDataset

    from kedro_prefect_hooks.compat import is_versioned

    plain, versioned = (
        JSONDataset(filepath="a.json"),
        JSONDataset(filepath="b.json", version=Version(None, None)),
    )
    assert isinstance(plain, AbstractVersionedDataset) and not is_versioned(plain)
    assert is_versioned(versioned)


def test_a_failure_message_is_sentences():
    """Issue 18, 7: `...(marker absent) To resume: Retry this flow run ...`."""
    from kedro_prefect_hooks.run.report import sentence

    assert sentence("RuntimeError: first attempt fails (marker absent)") == (
        "RuntimeError: first attempt fails (marker absent)."
    )
    assert sentence("ValueError: done. ") == "ValueError: done."
    assert sentence(None) == "no message."


def test_a_dask_cluster_slow_to_close_does_not_fail_a_run_whose_tasks_ended(caplog):
    """Seen in CI (both legs side by side): every task completed, then the flow failed with
    `TimeoutError:` from closing the temporary local cluster."""
    pytest.importorskip("prefect_dask")
    from kedro_prefect_hooks.config.run import DaskOptions
    from kedro_prefect_hooks.run.scheduling import DaskPool

    class SlowToClose:
        def __exit__(self, *exc):
            raise TimeoutError

    pool = DaskPool(DaskOptions())
    pool.runner = SlowToClose()
    pool.__exit__(None, None, None)  # the body ended well: a warning, not a failure
    assert "Closing the Dask cluster timed out" in caplog.text
    with pytest.raises(TimeoutError):  # the body failed: its error is not hidden behind a warning
        pool.__exit__(RuntimeError, RuntimeError("node failed"), None)
