from kedro.pipeline import Pipeline, node

from .nodes import clean_sales


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(clean_sales, ["raw_sales", "params:min_quantity"], "clean_sales", name="clean_sales", tags=["io"]),
    ])
