"""Work pools: the top-level one, a pipeline's override, a node tag's (`run.node_tags.<tag>.work_pool`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from kedro_prefect_hooks.config.base import _Model, prefect_name, sanitise


def _env_is_a_mapping(value: dict[str, Any] | None) -> dict[str, Any] | None:
    env = (value or {}).get("env")
    if env is not None and not (
        isinstance(env, dict) and all(isinstance(v, str) or v is None for v in env.values())
    ):
        raise ValueError(
            f"`env` must map variable names to strings, e.g. {{env: {{MY_VAR: '1'}}}}, got {env!r} "
            "(quote numbers and booleans)"
        )
    return value


class WorkPool(_Model):
    """The Prefect work pool the deployments target (`work_pool:`)."""

    name: str = Field(default="kedro", min_length=1)
    """Work pool of every deployment; created as a "process" pool when missing."""
    job_variables: dict[str, Any] = Field(default_factory=dict)
    """Passed to every deployment, e.g. {env: {MY_VAR: "1"}} or, on Docker/Kubernetes pools, {image: "..."}; checked against the pool's job template."""

    @field_validator("name")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        return prefect_name(value, "work pool")

    @field_validator("job_variables")
    @classmethod
    def _env(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _env_is_a_mapping(value) or {}

    def overridden_by(self, override: WorkPoolOverride | None) -> WorkPool:
        """This pool with a pipeline's override: the same pool merges job variables (and their
        `env`) key by key; another pool takes only its own job variables."""
        if override is None:
            return self
        if override.name is None or override.name == self.name:
            env = {
                **(self.job_variables.get("env") or {}),
                **((override.job_variables or {}).get("env") or {}),
            }
            merged = {**self.job_variables, **(override.job_variables or {})}
            return WorkPool(name=self.name, job_variables={**merged, "env": env} if env else merged)
        return WorkPool(name=override.name, job_variables=override.job_variables or {})


class WorkPoolOverride(_Model):
    """A pipeline's own work pool or job variables (`deployments.<pipeline>.work_pool`)."""

    name: str | None = None
    """Another pool for this pipeline, e.g. a GPU pool; null: the top-level pool."""
    job_variables: dict[str, Any] | None = None
    """Job variables for this pipeline; merged over the top-level ones on the same pool, e.g. {memory: 16Gi}."""

    @field_validator("name")
    @classmethod
    def _pool_name(cls, value: str | None) -> str | None:
        return value if value is None else prefect_name(value, "work pool")

    @field_validator("job_variables")
    @classmethod
    def _env(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _env_is_a_mapping(value)


def helper_name(deployment: str, tag: str) -> str:
    """The deployment the child runs of a pipeline's nodes tagged `tag` come from (registration
    writes it, the parent run starts it): the pipeline's deployment name and the tag."""
    return sanitise(f"{deployment}--{tag}")
