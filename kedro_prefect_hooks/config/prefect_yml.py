"""The whole `prefect.yml`: the top-level keys, and parsing a raw config into models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from kedro_prefect_hooks.config.base import (
    MAX_CONCURRENCY_LIMIT,
    NAME_FIELDS,
    ConfigError,
    _display,
    _Model,
    describe_errors,
)
from kedro_prefect_hooks.config.deployment import DeploymentOptions, WorkPool
from kedro_prefect_hooks.config.source import CodeSource
from kedro_prefect_hooks.prefect_api.settings import url_problem


class WorkerOptions(_Model):
    """The opt-in background worker for the work pool (`worker:`)."""

    start: bool = False
    """true: each Kedro session makes sure one background process worker serves the pool for this project."""
    limit: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY_LIMIT)
    """Flow runs the worker executes at once; null: no limit."""
    query_seconds: float = Field(default=2.0, gt=0, le=60)
    """How often the worker asks Prefect for runs: a triggered run starts within this."""
    start_wait_seconds: float = Field(default=30.0, gt=0, le=600)
    """How long the session that starts the worker waits to see it online in Prefect (a dead one is reported at once)."""


class Names(_Model):
    """Name templates; fields {project}, {pipeline}, {env}."""

    flow: str = "{project}"
    """Flow name template; fields {project}, {pipeline}, {env}."""
    deployment: str = "{pipeline}"
    """Deployment name template; fields {project}, {pipeline}, {env}."""

    @field_validator("flow", "deployment")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        import string

        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise ValueError(f"bad template {value!r}: {exc}") from None
        unknown = sorted(fields - set(NAME_FIELDS))
        if unknown or not value.strip():
            raise ValueError(
                f"template {value!r} uses {unknown or 'nothing'}; "
                f"use only {{project}}, {{pipeline}} and {{env}}"
            )
        try:
            value.format(**dict.fromkeys(NAME_FIELDS, "x"))
        except (ValueError, IndexError) as exc:
            raise ValueError(
                f"bad template {value!r}: {exc}; write fields plainly, e.g. '{{pipeline}}'"
            ) from None
        return value


class PrefectConfig(_Model):
    """The whole `prefect.yml`."""

    enabled: bool = True
    """false: the hook does nothing (e.g. in conf/ci)."""
    pipelines: list[str] | Literal["all"] = "all"
    """Pipelines to register: all, or a list such as [__default__, data_science]."""
    api_url: str | None = None
    """Prefect API; default: where Prefect finds it (PREFECT_API_URL, ./.env, ./prefect.toml, pyproject's [tool.prefect], the active profile), then this project's local server."""
    on_error: Literal["warn", "raise"] = "warn"
    """What an unreachable or failing API does to the Kedro command: one warning, or an error."""
    timeout: float = Field(default=2.0, gt=0, le=120)
    """Seconds a session's registration may wait beyond what a healthy server takes (and the most one of its requests may take); past it, the session stops and the next one finishes. A `kedro prefect` command waits up to 10 s an answer (or this, if longer)."""
    prune: bool = False
    """true: delete this project's (and env's) managed deployments that are no longer selected."""
    names: Names = Field(default_factory=Names)
    """Name templates of flows and deployments."""
    work_pool: WorkPool = Field(default_factory=WorkPool)
    """Where the deployments run; a pipeline may override it in `deployments.<pipeline>.work_pool`."""
    source: Literal["local"] | CodeSource = "local"
    """Where runs find the code: local (this checkout), {directory: /opt/project}, or {git: {url: ...}}."""
    worker: WorkerOptions = Field(default_factory=WorkerOptions)
    """The opt-in background worker."""
    mark_crashed_runs: Literal["auto"] | bool = "auto"
    """Mark runs CRASHED when their heartbeats stop for 90 s (an automation on the server, judging only runs of deployments that opted in); auto: when the API is this project's local server, however its URL was found."""
    defaults: DeploymentOptions = Field(default_factory=DeploymentOptions)
    """Options of every deployment."""
    deployments: dict[str, DeploymentOptions] = Field(default_factory=dict)
    """Per-pipeline overrides of `defaults`; tags add, parameters and run merge, the rest replace."""
    _files: list[Path] = PrivateAttr(default_factory=list)

    @field_validator("pipelines")
    @classmethod
    def _non_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not value:
            raise ValueError("the list is empty; name at least one pipeline, or write `all`")
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError(f"{value} names a pipeline twice")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if problem := url_problem(value):
            raise ValueError(f"{value!r} cannot be an API URL: {problem}; e.g. http://127.0.0.1:4200/api")
        return value

    def selected_pipelines(self, available: list[str], missing_ok: bool = False) -> list[str]:
        """The pipelines to register; raises ConfigError naming any unknown one (unless `missing_ok`)."""
        for key, names in (("pipelines", self.pipelines), ("deployments", self.deployments)):
            unknown = [] if names == "all" else [p for p in names if p not in available]
            if unknown and not missing_ok:
                raise self.error(
                    key,
                    f"pipeline(s) {unknown} are not registered by the project; "
                    f"available: {sorted(available)}",
                )
        selected = sorted(available) if self.pipelines == "all" else list(self.pipelines)
        self._check_chains(selected)
        return selected

    def _check_chains(self, selected: list[str]) -> None:
        """`after` names selected pipelines, and no chain loops back (a run would start the next forever)."""
        import graphlib

        upstream = {p: list(o.after or []) for p, o in self.deployments.items()}
        for pipeline, names in upstream.items():
            unknown = [n for n in names if n not in selected or n == pipeline]
            if unknown:
                raise self.error(
                    f"deployments.{pipeline}.after",
                    f"{unknown} must be other selected pipelines; selected: {selected}",
                )
        try:
            graphlib.TopologicalSorter(upstream).prepare()
        except graphlib.CycleError as exc:
            raise self.error(
                "deployments",
                f"`after` makes a loop ({' -> '.join(exc.args[1])}): each run would start the next forever",
            ) from None

    @model_validator(mode="after")
    def _per_pipeline_keys(self) -> PrefectConfig:
        if self.defaults.work_pool is not None:
            raise ValueError("`defaults.work_pool` is not a key: set the top-level `work_pool` instead")
        for key in ("after", "after_datasets"):
            if getattr(self.defaults, key) is not None:
                raise ValueError(
                    f"`defaults.{key}` is not a key: set `{key}` for a pipeline under `deployments`"
                )
        return self

    def pool_for(self, pipeline: str) -> WorkPool:
        """The work pool and job variables of `pipeline`'s deployment."""
        return self.work_pool.overridden_by(self.options_for(pipeline).work_pool)

    def options_for(self, pipeline: str) -> DeploymentOptions:
        """The defaults with `deployments.<pipeline>` merged over them."""
        override = self.deployments.get(pipeline)
        return override.merged_over(self.defaults) if override else self.defaults

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError naming this config's files, for checks made after parsing."""
        return ConfigError(f"Invalid prefect config in {_display(self._files)}: key `{key}`: {message}")


def parse_config(raw: Any, files: list[Path] | None = None) -> PrefectConfig:
    """Validate a raw config dict; `files` are named in error messages."""
    files = files or []
    try:
        config = PrefectConfig.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, files)) from None
    config._files = files
    return config
