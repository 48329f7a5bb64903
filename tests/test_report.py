"""The run report (the `kedro-<pipeline>` artifact): the env in force, versions written, names as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_prefect_hooks.run.report import RunReport, describe_dataset


def test_names_are_escaped_so_markdown_shows_them_as_written():
    """Seen: `__default__` rendered as a bold "default" in the UI."""
    report = RunReport("__default__", "local", ["make_*table*", "a|b", "tick`s"])
    report.started("a|b")
    report.finished("a|b", 0.5, ValueError("bad <b>input</b>"))
    text = report.markdown()
    assert "# Kedro pipeline \\_\\_default\\_\\_" in text
    assert "| make\\_\\*table\\* | not run | 0.000 | 0 |" in text
    assert "| a\\|b | failed: ValueError: bad \\<b\\>input\\</b\\> | 0.500 | 1 |" in text
    assert "| tick\\`s | not run |" in text
    assert "__default__" not in report.description() and "\\_\\_default\\_\\_" in report.description()


def test_a_versioned_dataset_is_listed_at_the_version_the_run_wrote(tmp_path):
    from kedro.io import Version
    from kedro_datasets.json import JSONDataset

    dataset = JSONDataset(
        filepath=str(tmp_path / "out.json"), version=Version(None, "2026-11-24T10.00.00.000Z")
    )
    dataset.save({"a": 1})
    written = describe_dataset("out", dataset)
    assert written.location == f"{tmp_path}/out.json/2026-11-24T10.00.00.000Z/out.json"
    assert Path(written.location).exists()
    plain = describe_dataset("plain", JSONDataset(filepath=str(tmp_path / "plain.json")))
    assert plain.location == f"{tmp_path}/plain.json"


@pytest.fixture
def in_project(make_project, monkeypatch):
    """The flow runs inside the bootstrapped project: so does the report."""
    from kedro.framework.startup import bootstrap_project

    project = make_project()
    bootstrap_project(project)
    monkeypatch.chdir(project)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    return project


def test_without_an_env_the_report_names_the_one_kedro_used(in_project, monkeypatch):
    """Seen: `env: default` for a run that read conf/local, Kedro's default run env."""
    assert "- env: local (the project's default run env)" in RunReport("p", None, []).markdown()
    monkeypatch.setenv("KEDRO_ENV", "staging")  # Kedro's session reads it when no env is given
    assert "- env: staging\n" in RunReport("p", None, []).markdown()
    assert "- env: prod\n" in RunReport("p", "prod", []).markdown()


def test_the_summary_reads_back_what_the_report_wrote():
    from kedro_prefect_hooks.run.report import read_summary

    report = RunReport("p", None, ["a, b", "x_|y", "c", "d"])
    report.started("a, b")
    report.finished("a, b", 0.1)
    report.started("x_|y")
    report.finished("x_|y", 0.1, RuntimeError("bad | thing"))
    report.skipped("c", "completed in an earlier attempt")
    report.set_tasks({"a, b (+1)": ["a, b", "c"], "x_|y": ["x_|y"], "d": ["d"]})
    report.resume_from = ["x_|y", "d\\e"]
    summary = read_summary(report.markdown())
    assert summary is not None
    assert summary.nodes == {"completed": 1, "failed": 1, "not run": 1, "skipped": 1}
    assert summary.tasks == {"completed": 1, "failed": 1, "not run": 1}
    assert summary.failed_nodes == ["x_|y"] and summary.resume_from == ["x_|y", "d\\e"]
    assert summary.counts("tasks") == (1, 1, 3) and summary.counts("nodes") == (2, 1, 4)
    assert read_summary("# some other markdown\n") is None
    single = RunReport("p", None, ["a"])
    single.set_tasks({"a": ["a"]})  # one node a task: no task line, the node counts stand for it
    assert read_summary(single.markdown()).tasks is None
