"""Issue 23's figures on a spaceflights-shaped project: the hook and `kedro prefect run` beside plain Kedro.

The project (the offline `kedro new` template, tests/kedro_projects.py): pipelines `data_processing`
(3 nodes) and `data_science` (7), `__default__` both, node modules importing pandas, pyarrow and
dask.dataframe (scikit-learn is not installed here); raw CSV files of 3000 rows, parquet
intermediates, a versioned pickled model, JSON metrics, memory datasets, parameters.yml. Against
its own local server (`kedro prefect server start`) with the flag-started worker already up,
`--repeat` interleaved rounds of:
  1. `kedro prefect run __default__ --wait` vs `kedro run`, the outputs checked after each, with
     where the flow run's time went (its states, as cli_run.py reads them); goal <= 1.3x;
  2. a new project's first session (a fresh copy each round): `kedro run`, hook vs none; goal <= +3 s;
  3. `kedro run --pipeline data_processing` right after a data_science node file was edited (the
     pipeline cache is stale), hook vs none, the background registration waited for between
     rounds (untimed); goal <= 1.10x.

Run: .nox/tests-newest/bin/python benchmarks/spaceflights.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cases import kedro  # noqa: E402
from cli_run import phases, timed  # noqa: E402
from session_start import background_registration_ended, spread  # noqa: E402

from kedro_prefect_hooks.local.server import local_server_url  # noqa: E402

from kedro_projects import copy_project, new_project, package_dir  # noqa: E402
from prefect_runs import call_api  # noqa: E402

PROCESSING_NODES = """
import pandas as pd
import pyarrow  # noqa: F401  (the parquet engine)

def preprocess_companies(companies: pd.DataFrame) -> pd.DataFrame:
    companies["iata_approved"] = companies["iata_approved"] == "t"
    companies["company_rating"] = companies["company_rating"].str.replace("%", "").astype(float) / 100
    return companies

def preprocess_shuttles(shuttles: pd.DataFrame) -> pd.DataFrame:
    for column in ("d_check_complete", "moon_clearance_complete"):
        shuttles[column] = shuttles[column] == "t"
    shuttles["price"] = shuttles["price"].str.replace("$", "").str.replace(",", "").astype(float)
    return shuttles

def create_model_input_table(shuttles, companies, reviews):
    table = shuttles.merge(reviews, left_on="id", right_on="shuttle_id")
    return table.merge(companies, left_on="company_id", right_on="id", suffixes=("", "_company")).dropna()
"""
SCIENCE_NODES = """
import dask.dataframe  # noqa: F401  (a heavy import, as scikit-learn is in spaceflights)
import numpy as np
import pandas as pd

def split_data(data, options):
    shuffled = data.sample(frac=1.0, random_state=options["random_state"])
    cut = int(len(shuffled) * (1 - options["test_size"]))
    x, y = shuffled[options["features"]].astype(float), shuffled["price"]
    return x[:cut], x[cut:], y[:cut], y[cut:]

def scale(x_train, x_test):
    mean, std = x_train.mean(), x_train.std().replace(0, 1)
    return (x_train - mean) / std, (x_test - mean) / std

def _design(x):
    return np.c_[np.ones(len(x)), x.to_numpy()]

def train_model(x_train, y_train, ridge):
    a = _design(x_train)
    coef = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ y_train.to_numpy())
    return {"columns": list(x_train.columns), "coef": coef}

def predict(model, x_test):
    return pd.Series(_design(x_test) @ model["coef"], index=x_test.index)

def evaluate_model(y_pred, y_test):
    residual = y_test - y_pred
    r2 = 1 - (residual**2).sum() / ((y_test - y_test.mean()) ** 2).sum()
    return {"r2": float(r2), "mae": float(residual.abs().mean()), "rows": len(y_test)}

def feature_importance(model):
    return dict(zip(model["columns"], np.abs(model["coef"][1:]).round(2).tolist()))

def report(metrics, importance):
    return {**metrics, "importance": importance}
"""
PIPELINE = """from kedro.pipeline import Pipeline, node

from .nodes import *  # noqa: F403


def create_pipeline(**kwargs):
    return Pipeline([{}
    ])
"""
NODES = {  # pipeline: its nodes (function, inputs, outputs)
    "data_processing": [
        ("preprocess_companies", "companies", "preprocessed_companies"),
        ("preprocess_shuttles", "shuttles", "preprocessed_shuttles"),
        (
            "create_model_input_table",
            ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
            "model_input_table",
        ),
    ],
    "data_science": [
        ("split_data", ["model_input_table", "params:split"], ["x_raw", "x_raw_test", "y_train", "y_test"]),
        ("scale", ["x_raw", "x_raw_test"], ["x_train", "x_test"]),
        ("train_model", ["x_train", "y_train", "params:ridge"], "regressor"),
        ("predict", ["regressor", "x_test"], "y_pred"),
        ("evaluate_model", ["y_pred", "y_test"], "metrics"),
        ("feature_importance", "regressor", "importance"),
        ("report", ["metrics", "importance"], "model_report"),
    ],
}
PARAMETERS = """
split:
  test_size: 0.2
  random_state: 3
  features: [engines, passenger_capacity, crew, d_check_complete, moon_clearance_complete,
             iata_approved, company_rating, review_scores_rating]
ridge: 0.1
"""
OUTPUTS = {  # dataset: file; every other dataset stays in memory
    "companies": "01_raw/companies.csv",
    "shuttles": "01_raw/shuttles.csv",
    "reviews": "01_raw/reviews.csv",
    "preprocessed_companies": "02_intermediate/preprocessed_companies.parquet",
    "preprocessed_shuttles": "02_intermediate/preprocessed_shuttles.parquet",
    "model_input_table": "03_primary/model_input_table.parquet",
    "regressor": "06_models/regressor.pickle",
    "metrics": "08_reporting/metrics.json",
    "model_report": "08_reporting/model_report.json",
}
TYPES = {"csv": "pandas.CSVDataset", "parquet": "pandas.ParquetDataset", "pickle": "pickle.PickleDataset"}


def spaceflights_template(root: Path, rows: int = 3000) -> Path:
    """The `kedro new` template with spaceflights' catalog and raw data (copies add the code)."""
    template = new_project(root)
    catalog = ""
    for name, path in OUTPUTS.items():
        kind = TYPES.get(path.rsplit(".", 1)[1], "json.JSONDataset")
        versioned = "\n  versioned: true" if name == "regressor" else ""
        catalog += f"{name}:\n  type: {kind}\n  filepath: data/{path}{versioned}\n"
        (template / "data" / path).parent.mkdir(parents=True, exist_ok=True)
    (template / "conf" / "base" / "catalog.yml").write_text(catalog)
    rng, companies = np.random.default_rng(23), rows // 3
    engines, capacity = rng.integers(1, 5, rows), rng.integers(2, 9, rows)
    prices = 900 * engines + 300 * capacity + rng.normal(0, 200, rows)
    raw = {
        "companies": {
            "id": range(companies),
            "company_rating": [f"{v}%" for v in rng.integers(50, 101, companies)],
            "company_location": rng.choice(["Niue", "Anguilla", "Russian Federation"], companies),
            "iata_approved": rng.choice(["t", "f"], companies),
        },
        "shuttles": {
            "id": range(rows),
            "engine_type": rng.choice(["Quantum", "Plasma", "Nuclear"], rows),
            "engines": engines,
            "passenger_capacity": capacity,
            "crew": rng.integers(1, 7, rows),
            "d_check_complete": rng.choice(["t", "f"], rows),
            "moon_clearance_complete": rng.choice(["t", "f"], rows),
            "price": [f"${v:,.1f}" for v in prices],
            "company_id": rng.integers(0, companies, rows),
        },
        "reviews": {"shuttle_id": range(rows), "review_scores_rating": rng.uniform(60, 100, rows).round(1)},
    }
    for name, columns in raw.items():
        pd.DataFrame(columns).to_csv(template / "data" / OUTPUTS[name], index=False)
    return template


def spaceflights(template: Path, root: Path, prefect_yml: str | None = None, hook: bool = True) -> Path:
    """A copy of the template under a new package name, with spaceflights' pipelines and parameters."""
    project = copy_project(template, root, prefect_yml, hook=hook)
    for pipeline, nodes in NODES.items():
        folder = package_dir(project) / "pipelines" / pipeline
        (folder / "pipeline.py").write_text(
            PIPELINE.format("".join(f"\n        node({f}, {i!r}, {o!r})," for f, i, o in nodes))
        )
        (folder / "nodes.py").write_text(PROCESSING_NODES if pipeline == "data_processing" else SCIENCE_NODES)
    (project / "conf" / "base" / "parameters.yml").write_text(PARAMETERS)
    return project


def written(project: Path, *args: str) -> float:
    """`timed`, with the outputs removed before and checked after: the run made them."""
    outputs = [project / "data" / path for name, path in OUTPUTS.items() if not path.startswith("01_raw")]
    for path in outputs:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    took = timed(project, *args)
    if missing := [str(path.relative_to(project)) for path in outputs if not path.exists()]:
        raise SystemExit(f"`kedro {' '.join(args)}` did not write {', '.join(missing)}")
    return took


def edit_a_node(project: Path, count: int) -> None:
    """A user's edit of a data_science node: the pipeline cache is stale."""
    nodes = package_dir(project) / "pipelines" / "data_science" / "nodes.py"
    nodes.write_text(nodes.read_text() + f"# edit {count}\n")


FIGURES = {  # the hook's side, the side it is compared with, the goal: at most this ratio, or "+s" seconds more
    "1. kedro prefect run __default__ --wait vs kedro run": ("ours", "plain", 1.3),
    "2. a new project's first session, kedro run, hook vs none": ("new", "new off", "+3"),
    "3. kedro run --pipeline data_processing after a node edit, hook vs none": ("edit", "edit off", 1.1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {key: [] for on, off, _ in FIGURES.values() for key in (on, off)}
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["PREFECT_HOME"] = str(root / "client-home")
        template = spaceflights_template(root)
        project = spaceflights(template, root, "pipelines: all\nworker: {start: true}\n")
        timed(project, "prefect", "server", "start")
        try:
            written(project, "run")  # registers, starts the worker
            api_url = local_server_url(project)
            assert api_url, "the project's local server is not running"
            written(project, "prefect", "run", "__default__", "--wait")  # the first run pays more
            registering = f"pipelines: all\napi_url: {api_url}\n"  # the same server, no worker
            edited = {"edit": spaceflights(template, root, registering)}
            edited["edit off"] = spaceflights(template, root, hook=False)
            for copy in edited.values():  # registers (the first session: in the session), warms the caches
                timed(copy, "run", "--pipeline", "data_processing")
            for round_ in range(args.repeat):
                times["plain"].append(written(project, "run"))
                times["ours"].append(written(project, "prefect", "run", "__default__", "--wait"))
                parts.append(phases(api_url, time.time()))
                for key, yml in (("new", registering), ("new off", None)):
                    fresh = spaceflights(template, root, yml, hook=yml is not None)
                    before = call_api("POST", f"{api_url}/deployments/count").json()
                    times[key].append(written(fresh, "run"))
                    background_registration_ended(fresh)
                    made = call_api("POST", f"{api_url}/deployments/count").json() - before
                    if made != (len(NODES) + 1 if yml else 0):  # its pipelines and __default__
                        raise SystemExit(f"the first session of {fresh.name} registered {made} deployments")
                for key, copy in edited.items():
                    edit_a_node(copy, round_)
                    times[key].append(timed(copy, "run", "--pipeline", "data_processing"))
                    background_registration_ended(copy)
        finally:
            kedro(project, "prefect", "worker", "stop")
            kedro(project, "prefect", "server", "stop")
    print(f"spaceflights-shaped project (10 nodes), medians of {args.repeat} (min-max):")
    for figure, (on, off, goal) in FIGURES.items():
        ours, theirs = statistics.median(times[on]), statistics.median(times[off])
        met = ours - theirs <= float(goal) if isinstance(goal, str) else ours / theirs <= goal
        target = f"{goal} s" if isinstance(goal, str) else f"{goal:.2f}x"
        print(
            f"{figure}: {spread(times[on])} vs {spread(times[off])}, {ours / theirs:.2f}x, "
            f"{ours - theirs:+.2f} s; goal <= {target}{'' if met else ', NOT met'}"
        )
        if figure.startswith("1."):
            for name in parts[0]:
                print(f"     {name:<28}{spread([p[name] for p in parts])}")


if __name__ == "__main__":
    main()
