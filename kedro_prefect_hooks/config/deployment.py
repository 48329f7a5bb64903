"""What a deployment carries: schedule, presets, limits, tags, run options, work pool."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from kedro_prefect_hooks.config.base import MAX_CONCURRENCY_LIMIT, _Model, prefect_name
from kedro_prefect_hooks.config.run import RunOptions
from kedro_prefect_hooks.config.schedule import Schedule
from kedro_prefect_hooks.config.work_pool import WorkPool as WorkPool
from kedro_prefect_hooks.config.work_pool import WorkPoolOverride
from kedro_prefect_hooks.run_options import FLOW_PARAMETERS


class DeploymentOptions(_Model):
    """What a deployment carries besides its name; `defaults` and per-pipeline overrides."""

    tags: list[str] | None = None
    """Extra deployment tags; per-pipeline tags add to the defaults."""
    description: str | None = None
    """Deployment description; default: "Kedro pipeline '<p>' of project '<project>' ..."."""
    schedule: Schedule | None = None
    """When Prefect runs the deployment; see Schedule."""
    parameters: dict[str, Any] | None = None
    """Preset flow parameters: params, tags, node_names, from_nodes, to_nodes, namespaces, from_inputs, to_outputs, load_versions, only_missing_outputs. E.g. {params: {model.test_size: 0.3}}."""
    work_queue: str | None = None
    """Work queue of the pool; null: the pool's default queue."""
    concurrency_limit: int | None = Field(default=1, ge=1, le=MAX_CONCURRENCY_LIMIT)
    """Runs of the deployment at once (default 1: two runs never write the same datasets at once); null: no limit."""
    collision_strategy: Literal["enqueue", "cancel_new"] = "enqueue"
    """A run beyond concurrency_limit: enqueue waits for a free slot (AwaitingConcurrencySlot), cancel_new cancels it."""
    paused: bool | None = None
    """true registers the deployment paused: its schedule creates no runs."""
    run: RunOptions = Field(default_factory=RunOptions)
    """How a flow run executes the nodes; read when the run starts."""
    work_pool: WorkPoolOverride | None = None
    """Per pipeline only: another work pool, or job variables merged over the top-level ones."""
    after: list[str] | None = None
    """Per pipeline only: run this pipeline's deployment when a run of one of these pipelines completes (a Prefect automation)."""
    after_datasets: list[str] | None = None
    """Per pipeline only: run this pipeline's deployment when one of these catalog datasets is materialized (a Prefect asset event, from a run of this project or anything that writes the same asset key)."""

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(value or {}) - set(FLOW_PARAMETERS))
        if unknown:
            raise ValueError(
                f"unknown flow parameter(s) {unknown}; the flow takes {list(FLOW_PARAMETERS)} "
                "(the pipeline and the env are set by the plugin)"
            )
        for name, given in (value or {}).items():
            try:
                TypeAdapter(FLOW_PARAMETERS[name]).validate_python(given, strict=True)
            except ValidationError:
                expected = {
                    "params": "a mapping, e.g. {model.test_size: 0.3}",
                    "load_versions": "a mapping of dataset names to versions",
                    "only_missing_outputs": "true or false",
                    "parameters": "a mapping of the pipeline's parameters",
                }.get(name, "a list of names")
                raise ValueError(f"flow parameter `{name}` must be {expected}, got {given!r}") from None
        return value

    @field_validator("work_queue")
    @classmethod
    def _queue_name(cls, value: str | None) -> str | None:
        return value if value is None else prefect_name(value, "work queue")

    def merged_over(self, defaults: DeploymentOptions) -> DeploymentOptions:
        """Per-pipeline options over the defaults.

        Tags add up; parameters, `run` keys and `run.node_tags` entries merge; the rest replace.
        """
        merged = defaults.model_dump(exclude_unset=False)
        for key, value in self.model_dump(exclude_unset=True).items():
            if key == "tags":
                merged["tags"] = list(dict.fromkeys([*(defaults.tags or []), *(value or [])]))
            elif key == "parameters":
                merged["parameters"] = {**(defaults.parameters or {}), **(value or {})}
            elif key == "run":
                node_tags = {**merged["run"]["node_tags"], **value.pop("node_tags", {})}
                merged["run"] = {**merged["run"], **value, "node_tags": node_tags}
            else:
                merged[key] = value
        return DeploymentOptions.model_validate(merged)
