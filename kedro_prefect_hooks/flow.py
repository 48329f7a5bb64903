"""The flow every registered deployment runs (entrypoint `kedro_prefect_hooks.flow.kedro_pipeline`).

It is importable by module path, so a worker started anywhere can load it; the
deployment's pull step puts the run in the project directory.
"""

from __future__ import annotations

from typing import Any

from prefect import flow


@flow(name="kedro-pipeline")
def kedro_pipeline(
    pipeline: str = "__default__",
    env: str | None = None,
    params: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    node_names: list[str] | None = None,
    from_nodes: list[str] | None = None,
    to_nodes: list[str] | None = None,
    namespaces: list[str] | None = None,
) -> None:
    """Run Kedro pipeline `pipeline` of the project in the working directory, in env `env`.

    `params` override parameters.yml (Kedro runtime params); the other arguments
    filter nodes as `kedro run` does.
    """
    raise NotImplementedError(
        "Running a pipeline as a Prefect flow is not built yet (kedro-prefect-hooks issue 3)."
    )
