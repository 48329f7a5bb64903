"""Register Kedro pipelines as Prefect deployments from a Kedro hook."""

__version__ = "0.1.0"

from kedro_prefect_hooks.hooks import PrefectHook

__all__ = ["PrefectHook", "__version__"]
