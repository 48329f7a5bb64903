"""Acceptance projects shaped like real Kedro projects, written by the test code itself.

`shapes`: several dataset kinds (CSV, Parquet, JSON, pickle; versioned and not), declared
and undeclared MemoryDatasets between nodes, namespaces (modular pipelines), parameters,
two independent branches joined at the end, and a node that fails once when armed.

`spaceflights`: the shape of Kedro's spaceflights-pandas starter: raw companies, shuttles
and reviews CSVs (generated here, deterministically), preprocessing to Parquet, a model
input table, a linear regression (numpy only) pickled and versioned, its metrics, and an
independent reporting branch; the model input table fails once when armed.

Outputs hold nothing that names the project package (each test copy has its own), so
they compare byte for byte with another copy's.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ARMED = "data/arm-fail"  # present: the project's flaky node fails once, removing it

FAILS_WHEN_ARMED = '''
from pathlib import Path


def fail_once_when_armed(name):
    """Fails the first attempt after the test armed it (data/arm-fail), never again."""
    marker = Path("data") / "arm-fail"
    if marker.exists():
        marker.unlink()
        raise RuntimeError(f"{name} fails on its first attempt (data/arm-fail was there)")
'''

SHAPES_NODES = """
import numpy as np
import pandas as pd

from ...armed import fail_once_when_armed


def make_orders(n_rows, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "order_id": np.arange(n_rows),
            "region": rng.choice(["north", "south", "east", "west"], n_rows),
            "quantity": rng.integers(1, 20, n_rows),
            "unit_price": rng.integers(100, 10000, n_rows) / 100,
        }
    )


def clean(orders):
    orders = orders[orders["quantity"] > 1].copy()
    orders["amount"] = orders["quantity"] * orders["unit_price"]
    return orders.reset_index(drop=True)


def features(orders, scale):
    return {
        "x": np.column_stack([np.ones(len(orders)), orders["quantity"].to_numpy() * scale]),
        "y": orders["amount"].to_numpy(),
    }


def fit(features):
    fail_once_when_armed("model.fit")
    coef, *_ = np.linalg.lstsq(features["x"], features["y"], rcond=None)
    return {"coef": coef}, {"rows": int(len(features["y"])), "method": "lstsq"}


def score(weights, features):
    residual = features["y"] - features["x"] @ weights["coef"]
    return {"rmse": round(float(np.sqrt(np.mean(residual**2))), 6), "rows": int(len(residual))}


def by_region(orders):
    return orders.groupby("region", sort=True)["amount"].sum()


def table(totals, threshold):
    frame = totals.rename("amount").reset_index()
    frame["large"] = frame["amount"] > threshold
    return frame


def report(table):
    return {row.region: round(float(row.amount), 2) for row in table.itertuples()}


def publish(scores, report):
    return pd.DataFrame({"metric": ["rmse", *report], "value": [scores["rmse"], *report.values()]})
"""

SHAPES_PIPELINE = """
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import by_region, clean, features, fit, make_orders, publish, report, score, table


def create_pipeline(**kwargs):
    ingest = pipeline(
        [
            node(make_orders, ["params:n_rows", "params:seed"], "orders", name="load"),
            node(clean, "orders", "clean_orders", name="clean"),
        ],
        namespace="ingest",
        outputs={"clean_orders": "clean_orders"},  # what other namespaces read: no namespace prefix
    )
    model = pipeline(
        [
            node(features, ["clean_orders", "params:scale"], "features", name="features"),
            node(fit, "features", ["weights", "fit_info"], name="fit"),
            node(score, ["weights", "features"], "scores", name="score"),
        ],
        namespace="model",
        inputs={"clean_orders": "clean_orders"},
        outputs={"scores": "model_scores"},
    )
    summary = pipeline(
        [
            node(by_region, "clean_orders", "totals", name="by_region"),
            node(table, ["totals", "params:threshold"], "table", name="table"),
            node(report, "table", "report", name="report"),
        ],
        namespace="summary",
        inputs={"clean_orders": "clean_orders"},
        outputs={"report": "summary_report"},
    )
    join = Pipeline([node(publish, ["model_scores", "summary_report"], "published", name="publish")])
    return ingest + model + summary + join
"""

SHAPES_CATALOG = """
ingest.orders: {type: pandas.CSVDataset, filepath: data/01_raw/orders.csv}
clean_orders: {type: pandas.ParquetDataset, filepath: data/02_intermediate/clean_orders.parquet}
model.features: {type: MemoryDataset}
model.weights: {type: pickle.PickleDataset, filepath: data/06_models/weights.pickle, versioned: true}
model.fit_info: {type: pickle.PickleDataset, filepath: data/06_models/fit_info.pickle}
model_scores: {type: json.JSONDataset, filepath: data/08_reporting/scores.json}
summary.table: {type: pandas.ParquetDataset, filepath: data/03_primary/summary_table.parquet, versioned: true}
summary_report: {type: json.JSONDataset, filepath: data/08_reporting/summary_report.json, versioned: true}
published: {type: pandas.CSVDataset, filepath: data/08_reporting/published.csv, versioned: true}
"""

SHAPES_PARAMETERS = """
ingest: {n_rows: 240, seed: 7}
model: {scale: 1.5}
summary: {threshold: 20000}
"""

SPACEFLIGHTS_PROCESSING_NODES = """
import pandas as pd

from ...armed import fail_once_when_armed


def _is_true(x: pd.Series) -> pd.Series:
    return x == "t"


def _parse_percentage(x: pd.Series) -> pd.Series:
    return x.str.replace("%", "").astype(float) / 100


def _parse_money(x: pd.Series) -> pd.Series:
    return x.str.replace("$", "").str.replace(",", "").astype(float)


def preprocess_companies(companies: pd.DataFrame) -> pd.DataFrame:
    companies["iata_approved"] = _is_true(companies["iata_approved"])
    companies["company_rating"] = _parse_percentage(companies["company_rating"])
    return companies


def preprocess_shuttles(shuttles: pd.DataFrame) -> pd.DataFrame:
    shuttles["d_check_complete"] = _is_true(shuttles["d_check_complete"])
    shuttles["moon_clearance_complete"] = _is_true(shuttles["moon_clearance_complete"])
    shuttles["price"] = _parse_money(shuttles["price"])
    return shuttles


def create_model_input_table(shuttles, companies, reviews):
    fail_once_when_armed("create_model_input_table_node")
    rated_shuttles = shuttles.merge(reviews, left_on="id", right_on="shuttle_id")
    rated_shuttles = rated_shuttles.drop("id", axis=1)
    model_input_table = rated_shuttles.merge(companies, left_on="company_id", right_on="id")
    return model_input_table.dropna().reset_index(drop=True)
"""

SPACEFLIGHTS_PROCESSING_PIPELINE = """
from kedro.pipeline import Node, Pipeline

from .nodes import create_model_input_table, preprocess_companies, preprocess_shuttles


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(preprocess_companies, "companies", "preprocessed_companies", name="preprocess_companies_node"),
            Node(preprocess_shuttles, "shuttles", "preprocessed_shuttles", name="preprocess_shuttles_node"),
            Node(
                create_model_input_table,
                ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
                "model_input_table",
                name="create_model_input_table_node",
            ),
        ]
    )
"""

SPACEFLIGHTS_SCIENCE_NODES = '''
import logging

import numpy as np
import pandas as pd


def split_data(data: pd.DataFrame, parameters: dict) -> tuple:
    """The starter's train_test_split, with numpy: a seeded permutation."""
    X = data[parameters["features"]].astype(float)
    y = data["price"]
    order = np.random.default_rng(parameters["random_state"]).permutation(len(data))
    n_test = int(round(len(data) * parameters["test_size"]))
    test, train = order[:n_test], order[n_test:]
    return X.iloc[train], X.iloc[test], y.iloc[train], y.iloc[test]


def train_model(X_train: pd.DataFrame, y_train: pd.Series) -> dict:
    """A linear regression by least squares: coefficients and intercept, as plain arrays."""
    design = np.column_stack([np.ones(len(X_train)), X_train.to_numpy()])
    coef, *_ = np.linalg.lstsq(design, y_train.to_numpy(), rcond=None)
    return {"intercept": float(coef[0]), "coef": coef[1:], "features": list(X_train.columns)}


def evaluate_model(regressor: dict, X_test: pd.DataFrame, y_test: pd.Series) -> dict:
    y_pred = regressor["intercept"] + X_test.to_numpy() @ regressor["coef"]
    residual = y_test.to_numpy() - y_pred
    r2 = 1 - float(np.sum(residual**2)) / float(np.sum((y_test.to_numpy() - y_test.mean()) ** 2))
    logging.getLogger(__name__).info("Model has a coefficient R^2 of %.3f on test data.", r2)
    return {"r2_score": round(r2, 6), "mae": round(float(np.mean(np.abs(residual))), 6)}
'''

SPACEFLIGHTS_SCIENCE_PIPELINE = """
from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_model, split_data, train_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                split_data,
                ["model_input_table", "params:model_options"],
                ["X_train", "X_test", "y_train", "y_test"],
                name="split_data_node",
            ),
            Node(train_model, ["X_train", "y_train"], "regressor", name="train_model_node"),
            Node(evaluate_model, ["regressor", "X_test", "y_test"], "metrics", name="evaluate_model_node"),
        ]
    )
"""

SPACEFLIGHTS_REPORTING_PIPELINE = """
from kedro.pipeline import Node, Pipeline


def passenger_capacity(shuttles):
    mean = shuttles.groupby("shuttle_type", sort=True)["passenger_capacity"].mean()
    return {kind: round(float(value), 3) for kind, value in mean.items()}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [Node(passenger_capacity, "preprocessed_shuttles", "shuttle_passenger_capacity", name="shuttle_capacity_report_node")]
    )
"""

SPACEFLIGHTS_CATALOG = """
companies: {type: pandas.CSVDataset, filepath: data/01_raw/companies.csv}
reviews: {type: pandas.CSVDataset, filepath: data/01_raw/reviews.csv}
shuttles: {type: pandas.CSVDataset, filepath: data/01_raw/shuttles.csv}
preprocessed_companies: {type: pandas.ParquetDataset, filepath: data/02_intermediate/preprocessed_companies.parquet}
preprocessed_shuttles: {type: pandas.ParquetDataset, filepath: data/02_intermediate/preprocessed_shuttles.parquet}
model_input_table: {type: pandas.ParquetDataset, filepath: data/03_primary/model_input_table.parquet}
regressor: {type: pickle.PickleDataset, filepath: data/06_models/regressor.pickle, versioned: true}
metrics: {type: json.JSONDataset, filepath: data/09_tracking/metrics.json, versioned: true}
shuttle_passenger_capacity: {type: json.JSONDataset, filepath: data/08_reporting/shuttle_passenger_capacity.json}
"""

SPACEFLIGHTS_PARAMETERS = """
model_options:
  test_size: 0.2
  random_state: 3
  features: [engines, passenger_capacity, crew, d_check_complete, moon_clearance_complete, iata_approved, company_rating, review_scores_rating]
"""

SPACEFLIGHTS_REGISTRY = """
from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    # as the starter's, plus what Kedro >= 1.5 needs to load every pipeline for __default__
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values())
    return pipelines
"""


def spaceflights_raw_data(folder: Path, companies: int = 40, shuttles: int = 120) -> None:
    """companies.csv, shuttles.csv and reviews.csv shaped like the starter's, from a fixed seed."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2026)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "id": np.arange(1, companies + 1) * 7,
            "company_rating": [f"{v}%" for v in rng.integers(50, 100, companies)],
            "company_location": rng.choice(["Niue", "Anguilla", "Russian Federation", "Barbados"], companies),
            "total_fleet_count": rng.integers(1, 10, companies).astype(float),
            "iata_approved": rng.choice(["t", "f"], companies),
        }
    ).to_csv(folder / "companies.csv", index=False)
    pd.DataFrame(
        {
            "id": np.arange(1, shuttles + 1) * 11,
            "shuttle_location": rng.choice(["Sao Tome", "Wallis", "Niue"], shuttles),
            "shuttle_type": rng.choice(["Type V5", "Type F5", "Type A5"], shuttles),
            "engine_type": rng.choice(["Quantum", "Plasma", "Nuclear"], shuttles),
            "engine_vendor": rng.choice(["ThetaBase Services", "Banks, Wood and Phillips"], shuttles),
            "engines": rng.integers(1, 4, shuttles).astype(float),
            "passenger_capacity": rng.integers(2, 10, shuttles),
            "cancellation_policy": rng.choice(["strict", "moderate", "flexible"], shuttles),
            "crew": rng.integers(1, 6, shuttles).astype(float),
            "d_check_complete": rng.choice(["t", "f"], shuttles),
            "moon_clearance_complete": rng.choice(["t", "f"], shuttles),
            "price": [f"${v:,.1f}" for v in rng.integers(500, 5000, shuttles) * 1.0],
            "company_id": rng.choice(np.arange(1, companies + 1) * 7, shuttles),
        }
    ).to_csv(folder / "shuttles.csv", index=False)
    pd.DataFrame(
        {
            "shuttle_id": np.arange(1, shuttles + 1) * 11,
            "review_scores_rating": rng.integers(60, 100, shuttles).astype(float),
            "review_scores_comfort": rng.integers(5, 10, shuttles).astype(float),
            "number_of_reviews": rng.integers(0, 50, shuttles),
        }
    ).to_csv(folder / "reviews.csv", index=False)


@dataclass(frozen=True)
class Shape:
    """An acceptance project: its pipeline, what its runs make, where its filters start and end."""

    name: str
    pipeline: str
    tasks: dict[str, int]  # grouping -> tasks a full run makes (none: one per node)
    from_nodes: list[str]  # a --from-nodes start whose inputs are persisted
    seeded: list[str]  # the files a --from-nodes run reads, copied from a full `kedro run`
    to_outputs: list[str]
    done_before_failure: list[str]  # nodes every runner completes before the armed node fails
    files: dict[str, str] = field(default_factory=dict)  # path in the package -> code
    conf: dict[str, str] = field(default_factory=dict)  # path in conf/base -> yaml


SHAPES = Shape(
    name="shapes",
    pipeline="shapes",
    tasks={"none": 9, "memory": 6},
    from_nodes=["model.features", "summary.by_region"],
    seeded=["data/01_raw/orders.csv", "data/02_intermediate/clean_orders.parquet"],
    to_outputs=["model_scores"],
    done_before_failure=["ingest.load", "ingest.clean"],
    files={
        "armed.py": FAILS_WHEN_ARMED,
        "pipelines/shapes/__init__.py": "from .pipeline import create_pipeline  # noqa\n",
        "pipelines/shapes/nodes.py": SHAPES_NODES,
        "pipelines/shapes/pipeline.py": SHAPES_PIPELINE,
    },
    conf={"catalog.yml": SHAPES_CATALOG, "parameters.yml": SHAPES_PARAMETERS},
)

SPACEFLIGHTS = Shape(
    name="spaceflights",
    pipeline="__default__",
    tasks={"none": 7, "memory": 5},
    from_nodes=["split_data_node"],
    seeded=["data/03_primary/model_input_table.parquet"],
    to_outputs=["model_input_table"],
    done_before_failure=["preprocess_companies_node", "preprocess_shuttles_node"],
    files={
        "armed.py": FAILS_WHEN_ARMED,
        "pipeline_registry.py": SPACEFLIGHTS_REGISTRY,
        "pipelines/data_processing/__init__.py": "from .pipeline import create_pipeline  # noqa\n",
        "pipelines/data_processing/nodes.py": SPACEFLIGHTS_PROCESSING_NODES,
        "pipelines/data_processing/pipeline.py": SPACEFLIGHTS_PROCESSING_PIPELINE,
        "pipelines/data_science/__init__.py": "from .pipeline import create_pipeline  # noqa\n",
        "pipelines/data_science/nodes.py": SPACEFLIGHTS_SCIENCE_NODES,
        "pipelines/data_science/pipeline.py": SPACEFLIGHTS_SCIENCE_PIPELINE,
        "pipelines/reporting/__init__.py": "from .pipeline import create_pipeline  # noqa\n",
        "pipelines/reporting/pipeline.py": SPACEFLIGHTS_REPORTING_PIPELINE,
    },
    conf={"catalog.yml": SPACEFLIGHTS_CATALOG, "parameters_data_science.yml": SPACEFLIGHTS_PARAMETERS},
)


def write_shape(project: Path, shape: Shape, package: str) -> None:
    """The shape's code into src/<package>, its conf into conf/base, its raw data into data/."""
    for path, code in shape.files.items():
        target = project / "src" / package / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(code).lstrip())
    for path, text in shape.conf.items():
        (project / "conf" / "base" / path).write_text(textwrap.dedent(text).lstrip())
    (project / "data").mkdir(exist_ok=True)
    if shape is SPACEFLIGHTS:
        spaceflights_raw_data(project / "data" / "01_raw")


VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")


def outputs(project: Path) -> dict[str, bytes]:
    """Every file under data/ by its path; a versioned dataset (`<path>/<version>/<file>`) by its
    path without the version, at its newest version: what the next `kedro run` would load."""
    found: dict[str, tuple[str, bytes]] = {}
    for path in sorted((project / "data").rglob("*")):
        if not path.is_file() or path.relative_to(project).as_posix() == ARMED:
            continue
        parts = path.relative_to(project).parts
        version = next((p for p in parts if VERSION.match(p)), "")
        key = "/".join(p for p in parts if p != version)
        if key not in found or version > found[key][0]:
            found[key] = (version, path.read_bytes())
    return {key: content for key, (_, content) in found.items()}


TEMPLATE_PACKAGE, TEMPLATE_NAME = "template_project", "Template Project"


def clone_project(template: Path, root: Path, prefect_yml: str) -> Path:
    """A copy of an acceptance template under a fresh package and project name (so its flow and
    deployments are its own), with the hook enabled and `prefect_yml` in conf/base."""
    import shutil
    import uuid

    from kedro_projects import HOOK_SETTINGS

    suffix = uuid.uuid4().hex[:8]
    package = f"acc_{suffix}"
    project = root / package
    shutil.copytree(template, project)
    (project / "src" / TEMPLATE_PACKAGE).rename(project / "src" / package)
    for path in [project / "pyproject.toml", *(project / "src").rglob("*.py")]:
        path.write_text(path.read_text().replace(TEMPLATE_PACKAGE, package))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'"{TEMPLATE_NAME}"', f'"Acceptance {suffix}"'))
    with open(project / "src" / package / "settings.py", "a") as settings:
        settings.write(HOOK_SETTINGS)
    (project / "conf" / "base" / "prefect.yml").write_text(textwrap.dedent(prefect_yml))
    return project
