from kedro.pipeline import Pipeline, node, pipeline

from .nodes import store_rows, summarise


def create_pipeline(**kwargs) -> Pipeline:
    one_store = Pipeline([
        node(store_rows, ["clean_sales", "params:store"], "rows", name="store_rows"),
        node(summarise, "rows", "store_summary", name="summarise", tags=["io"]),
    ])
    return sum(
        (pipeline(one_store, namespace=store, inputs={"clean_sales"}) for store in ("north", "south")),
        Pipeline([]),
    )
