"""kedro-mlflow alongside: one MLflow run per flow run, with the nodes' params and metrics, tagged
with the flow run; under every task runner. Real kedro-mlflow, a local SQLite tracking store,
the flow called in-process against the real server (as test_flow_in_process.py)."""

from __future__ import annotations

import textwrap
import threading

import pytest

pytest.importorskip("kedro_mlflow")
import mlflow
from mlflow.tracking import MlflowClient

PIPELINE = """
    import time

    from kedro.pipeline import Pipeline, node


    def train(alpha):
        time.sleep(0.3)  # train and tune overlap under threads
        return alpha * 2


    def tune(beta):
        time.sleep(0.6)
        return beta + 1


    def score(x):
        return float(x)


    def boom(x):
        raise ValueError("boom")


    def create_pipeline(**kwargs):
        return Pipeline([
            node(train, "params:alpha", "model_a", name="train"),
            node(tune, "params:beta", "model_b", name="tune"),
            node(score, "model_a", "metric_a", name="score_a"),
            node(score, "model_b", "metric_b", name="score_b"),
        ])


    def create_failing(**kwargs):
        return Pipeline([node(train, "params:alpha", "model_a", name="train"),
                         node(boom, "params:beta", "never", name="boom")])
"""
CATALOG = """
    metric_a: {type: kedro_mlflow.io.metrics.MlflowMetricDataset}
    metric_b: {type: kedro_mlflow.io.metrics.MlflowMetricDataset}
    model_a: {type: pickle.PickleDataset, filepath: data/model_a.pkl}
    model_b: {type: pickle.PickleDataset, filepath: data/model_b.pkl}
"""


@pytest.fixture
def run_mlflow_flow(api_url, make_project, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def run(task_runner: str, pipeline: str = "ml", times: int = 1):
        extra = ", dask: {n_workers: 2, threads_per_worker: 1}" if task_runner == "dask" else ""
        project = make_project(f"defaults: {{run: {{task_runner: {task_runner}{extra}}}}}\n")
        package = next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))
        folder = package / "pipelines" / "ml"
        folder.mkdir()
        (folder / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa\n")
        (folder / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
        failing = package / "pipelines" / "mlfail"
        failing.mkdir()
        (failing / "__init__.py").write_text(
            "from ..ml.pipeline import create_failing as create_pipeline  # noqa\n"
        )
        (project / "conf" / "base" / "catalog.yml").write_text(textwrap.dedent(CATALOG))
        (project / "conf" / "base" / "parameters.yml").write_text("alpha: 0.5\nbeta: 3\n")
        (project / "conf" / "local" / "mlflow.yml").write_text(
            # absolute: MLflow caches a SQLite store per URI string, so a relative one would stay on
            # the first test's file
            f"server: {{mlflow_tracking_uri: 'sqlite:///{project}/mlflow.db'}}\ntracking: {{experiment: {{name: kph}}}}\n"
        )
        (project / "data").mkdir(exist_ok=True)
        monkeypatch.chdir(project)
        from kedro_prefect_hooks.flow import kedro_pipeline

        states = []
        for _ in range(times):
            with temporary_settings({PREFECT_API_URL: api_url}):
                states.append(kedro_pipeline(pipeline=pipeline, return_state=True))
        client = MlflowClient(f"sqlite:///{project}/mlflow.db")
        experiment = client.get_experiment_by_name("kph")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return states, runs

    yield run
    while mlflow.active_run():  # never leak a run into the next test
        mlflow.end_run()


@pytest.mark.parametrize("task_runner", ["sequential", "threads", "dask"])
def test_one_mlflow_run_per_flow_run_with_params_metrics_and_the_flow_run(run_mlflow_flow, task_runner):
    states, runs = run_mlflow_flow(task_runner, times=2)
    assert all(state.is_completed() for state in states), [s.message for s in states]
    assert len(runs) == 2  # not one per thread or process, and the second flow run does not reuse the first's
    by_flow_run = {run.data.tags["prefect.flow_run_id"]: run for run in runs}
    assert set(by_flow_run) == {str(state.state_details.flow_run_id) for state in states}
    for flow_run_id, run in by_flow_run.items():
        assert run.info.status == "FINISHED"
        assert run.data.params == {"alpha": "0.5", "beta": "3"}
        assert run.data.metrics == {"metric_a": 1.0, "metric_b": 4.0}
        assert run.data.tags["prefect.flow_run_url"].endswith(f"/flow-runs/flow-run/{flow_run_id}")
    assert mlflow.active_run() is None  # the flow's thread keeps no run


def test_a_failed_node_fails_the_one_mlflow_run(run_mlflow_flow):
    (state,), runs = run_mlflow_flow("threads", pipeline="mlfail")
    assert state.is_failed()
    assert [run.info.status for run in runs] == ["FAILED"]
    assert runs[0].data.params == {"alpha": "0.5", "beta": "3"}
    assert runs[0].data.tags["prefect.flow_run_id"] == str(state.state_details.flow_run_id)


def test_the_flow_threads_run_is_active_in_a_task_thread_and_left_running(tmp_path, monkeypatch):
    from kedro_prefect_hooks.run import mlflow_link

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("unit")  # not the experiment id an earlier test's store left active
    with mlflow.start_run() as run:
        shared = mlflow_link.flow_thread_run()
        seen = {}

        def task_body():
            with mlflow_link.active_in_this_thread(shared):
                seen["active"] = mlflow.active_run().info.run_id
                mlflow.start_run(
                    run_id=run.info.run_id, nested=True
                )  # what kedro-mlflow's before_node_run does
                mlflow.log_param("p", 1)
            seen["after"] = mlflow.active_run()

        worker = threading.Thread(target=task_body)
        worker.start()
        worker.join()
        assert seen == {"active": run.info.run_id, "after": None}
        assert MlflowClient().get_run(run.info.run_id).info.status == "RUNNING"  # not ended by the task
        assert mlflow.active_run().info.run_id == run.info.run_id
    assert MlflowClient().get_run(run.info.run_id).data.params == {"p": "1"}


def test_without_mlflow_imported_nothing_happens(monkeypatch):
    import sys

    from kedro_prefect_hooks.run import mlflow_link

    monkeypatch.delitem(sys.modules, "mlflow")
    assert mlflow_link.flow_thread_run() is None
    with mlflow_link.active_in_this_thread(None):
        pass
    mlflow_link.tag_with_flow_run(None)
    assert "mlflow" not in sys.modules
