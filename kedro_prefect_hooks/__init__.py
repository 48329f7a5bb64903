"""Register Kedro pipelines as Prefect deployments from a Kedro hook."""

from kedro_prefect_hooks.hooks import PrefectHook
from kedro_prefect_hooks.version import __version__

__all__ = ["PrefectHook", "__version__"]
