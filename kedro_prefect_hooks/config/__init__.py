"""The `prefect` section of a Kedro project's config: models, checks, and loading it.

Everything a user can get wrong is checked here, before any API call, so a config
error registers nothing. One module per part of prefect.yml; the names below are
what the rest of the package uses.
"""

from kedro_prefect_hooks.config.base import ConfigError
from kedro_prefect_hooks.config.deployment import FLOW_PARAMETERS, DeploymentOptions, WorkPool
from kedro_prefect_hooks.config.prefect_yml import Names, PrefectConfig, WorkerOptions, parse_config
from kedro_prefect_hooks.config.run import RunOptions, TaskOptions
from kedro_prefect_hooks.config.schedule import Schedule

__all__ = [
    "FLOW_PARAMETERS",
    "ConfigError",
    "DeploymentOptions",
    "Names",
    "PrefectConfig",
    "RunOptions",
    "Schedule",
    "TaskOptions",
    "WorkPool",
    "WorkerOptions",
    "parse_config",
]
