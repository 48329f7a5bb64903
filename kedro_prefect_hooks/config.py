"""The `prefect` section of a Kedro project's config: models, and loading it.

Everything a user can get wrong is checked here, before any API call, so a
config error registers nothing.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any, Literal

import yaml
from kedro.framework.cli.utils import KedroCliError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from kedro_prefect_hooks.compat import prefect_cron_problem
from kedro_prefect_hooks.connection import url_problem

# Flow parameters a deployment may preset, with their types; kept equal to
# kedro_prefect_hooks.flow's signature by a test, so that this module does not import prefect.
FLOW_PARAMETERS: dict[str, Any] = {
    "params": dict[str, Any] | None,
    "tags": list[str] | None,
    "node_names": list[str] | None,
    "from_nodes": list[str] | None,
    "to_nodes": list[str] | None,
    "namespaces": list[str] | None,
}
NAME_FIELDS = ("project", "pipeline", "env")
# Prefect refuses these in flow, deployment, work pool and work queue names.
BANNED_NAME_CHARACTERS = "/%&<>"
# Beyond these the server answers 500 or drops the connection (measured on 3.9).
MAX_INTERVAL_SECONDS = 100 * 365 * 24 * 3600
MAX_CONCURRENCY_LIMIT = 2**31 - 1


class ConfigError(KedroCliError, ValueError):
    """The prefect config is invalid; the message names the file, the key and the fix.

    A KedroCliError, so a Kedro command prints the message in a few lines instead
    of a traceback. The traceback shows with Kedro's `--verbose` (commands that
    have it) or KEDRO_PREFECT_HOOKS_TRACEBACK=1 (`kedro run` has no --verbose).
    """

    def show(self, file: Any = None) -> None:
        # Kedro's show() reads sys.exc_info(), which click 8.4 has cleared by now
        # (it prints "NoneType: None"); the exception carries its own traceback.
        import os
        import sys

        import click

        file = file or sys.stderr
        if self.VERBOSE_ERROR or os.environ.get("KEDRO_PREFECT_HOOKS_TRACEBACK"):
            import traceback

            click.secho("".join(traceback.format_exception(self)), file=file, nl=False, fg="yellow")
        else:
            click.secho(
                f"Error: {self.message}\n(full traceback: KEDRO_PREFECT_HOOKS_TRACEBACK=1)",
                file=file,
                fg="yellow",
            )


class _Model(BaseModel):
    # Field docstrings are read by docs/hooks.py for the configuration reference
    # (not at runtime: use_attribute_docstrings would cost each Kedro session 15 ms).
    model_config = ConfigDict(extra="forbid")


class Schedule(_Model):
    """One of cron, interval (seconds) or rrule, in a timezone."""

    cron: str | None = None
    """Cron expression as Prefect reads it (croniter), e.g. "0 6 * * 1-5" or "@daily"."""
    interval: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    """Seconds between runs, e.g. 3600 (at most 100 years)."""
    rrule: str | None = None
    """An RFC 5545 recurrence rule, e.g. "FREQ=WEEKLY;BYDAY=MO"."""
    timezone: str = "UTC"
    """IANA time zone the schedule is read in, e.g. "Europe/Paris"."""
    anchor_date: dt.datetime | None = None
    """For `interval` only: when the intervals start, e.g. "2026-01-01T00:00:00"."""
    active: bool = True
    """false keeps the schedule on the deployment but creates no runs."""

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Schedule:
        kinds = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a schedule needs exactly one of `cron`, `interval` (seconds) or `rrule`, "
                f"got {kinds or 'none'}"
            )
        if self.anchor_date is not None and self.interval is None:
            raise ValueError("`anchor_date` applies to `interval` schedules only")
        return self

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and (problem := prefect_cron_problem(value)):
            raise ValueError(
                f"invalid cron expression {value!r}: {problem}; e.g. '0 6 * * *' for 06:00 every day, or '@daily'"
            )
        return value

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, value: str | None) -> str | None:
        if value is not None:
            from dateutil.rrule import rrulestr

            try:
                rrulestr(value, cache=False)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"invalid rrule {value!r} ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
            ) from None
        return value

    def to_api(self) -> dict[str, Any]:
        """The schedule as Prefect's API takes it in `schedules[].schedule`."""
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone}
        if self.rrule is not None:
            return {"rrule": self.rrule, "timezone": self.timezone}
        body: dict[str, Any] = {"interval": self.interval, "timezone": self.timezone}
        if self.anchor_date is not None:
            body["anchor_date"] = self.anchor_date.isoformat()
        return body


class TaskOptions(_Model):
    """Prefect task settings for the nodes carrying one Kedro tag (`run.node_tags.<tag>`)."""

    retries: int | None = Field(default=None, ge=0)
    """Retries of a failed node carrying the tag."""
    retry_delay_seconds: float | None = Field(default=None, ge=0)
    """Seconds between those retries."""
    timeout_seconds: float | None = Field(default=None, gt=0)
    """A node (task) running longer fails; null: no limit."""


class RunOptions(_Model):
    """How a flow run executes the pipeline's nodes; read inside the run, so no re-registration."""

    task_runner: Literal["threads", "sequential"] = "threads"
    """threads: a node starts as soon as its Kedro parents completed; sequential: one at a time, in the flow thread."""
    max_workers: int = Field(default=8, ge=1)
    """Threads running nodes at once (threads only)."""
    group_by: Literal["none", "namespace"] = "none"
    """namespace: one Prefect task per top-level namespace instead of one per node."""
    retries: int = Field(default=0, ge=0)
    """Prefect task retries of a failed node."""
    retry_delay_seconds: float = Field(default=0, ge=0)
    """Seconds between retries."""
    timeout_seconds: float | None = Field(default=None, gt=0)
    """A node (task) running longer fails; null: no limit."""
    node_tags: dict[str, TaskOptions] = Field(default_factory=dict)
    """Per Kedro node tag: retries, retry_delay_seconds, timeout_seconds; the largest value of matching tags wins. E.g. {flaky: {retries: 3}}."""

    def task_options(self, tags: set[str] | frozenset[str]) -> TaskOptions:
        """Retries, delay and timeout for a node (or group) with `tags`.

        Tag settings replace the defaults; when several tags set one key, the largest wins.
        """
        chosen = TaskOptions(
            retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds,
            timeout_seconds=self.timeout_seconds,
        )
        matching = [self.node_tags[tag] for tag in sorted(tags) if tag in self.node_tags]
        for key in TaskOptions.model_fields:
            values = [getattr(m, key) for m in matching if getattr(m, key) is not None]
            if values:
                setattr(chosen, key, max(values))
        return chosen


class DeploymentOptions(_Model):
    """What a deployment carries besides its name; `defaults` and per-pipeline overrides."""

    tags: list[str] | None = None
    """Extra deployment tags; per-pipeline tags add to the defaults."""
    description: str | None = None
    """Deployment description; default: "Kedro pipeline '<p>' of project '<project>' ..."."""
    schedule: Schedule | None = None
    """When Prefect runs the deployment; see Schedule."""
    parameters: dict[str, Any] | None = None
    """Preset flow parameters: params, tags, node_names, from_nodes, to_nodes, namespaces. E.g. {params: {model.test_size: 0.3}}."""
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
                expected = "a mapping, e.g. {model.test_size: 0.3}" if name == "params" else "a list of names"
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


class WorkPool(_Model):
    """The Prefect work pool every deployment targets."""

    name: str = Field(default="kedro", min_length=1)
    """Work pool of every deployment; created as a "process" pool when missing."""
    job_variables: dict[str, Any] = Field(default_factory=dict)
    """Passed to every deployment, e.g. {env: {MY_VAR: "1"}} or, on Docker/Kubernetes pools, {image: "..."}."""

    @field_validator("name")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        return prefect_name(value, "work pool")

    @field_validator("job_variables")
    @classmethod
    def _env_is_a_mapping(cls, value: dict[str, Any]) -> dict[str, Any]:
        env = value.get("env")
        if env is not None and not (
            isinstance(env, dict) and all(isinstance(v, str) or v is None for v in env.values())
        ):
            raise ValueError(
                f"`env` must map variable names to strings, e.g. {{env: {{MY_VAR: '1'}}}}, got {env!r} "
                "(quote numbers and booleans)"
            )
        return value


class WorkerOptions(_Model):
    """The opt-in background worker for the work pool (`worker:`)."""

    start: bool = False
    """true: each Kedro session makes sure one background process worker serves the pool for this project."""
    limit: int | None = Field(default=None, ge=1)
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


def prefect_name(value: str, what: str) -> str:
    """A name Prefect accepts as it is: no / % & < >, not blank."""
    banned = sorted({c for c in value if c in BANNED_NAME_CHARACTERS})
    if banned or not value.strip():
        raise ValueError(
            f"{what} name {value!r} "
            + (f"contains {' '.join(banned)}" if banned else "is blank")
            + f", which Prefect refuses in names ({' '.join(BANNED_NAME_CHARACTERS)})"
        )
    return value


class PrefectConfig(_Model):
    """The whole `prefect.yml`."""

    enabled: bool = True
    """false: the hook does nothing (e.g. in conf/ci)."""
    pipelines: list[str] | Literal["all"] = "all"
    """Pipelines to register: all, or a list such as [__default__, data_science]."""
    api_url: str | None = None
    """Prefect API; default: PREFECT_API_URL, then the active Prefect profile, then this project's local server."""
    on_error: Literal["warn", "raise"] = "warn"
    """What an unreachable or failing API does to the Kedro command: one warning, or an error."""
    timeout: float = Field(default=2.0, gt=0, le=120)
    """Seconds per API request made at session start."""
    prune: bool = False
    """true: delete this project's (and env's) managed deployments that are no longer selected."""
    names: Names = Field(default_factory=Names)
    """Name templates of flows and deployments."""
    work_pool: WorkPool = Field(default_factory=WorkPool)
    """Where the deployments run."""
    worker: WorkerOptions = Field(default_factory=WorkerOptions)
    """The opt-in background worker."""
    mark_crashed_runs: Literal["auto"] | bool = "auto"
    """Mark runs CRASHED when their heartbeats stop for 90 s (an automation on the server); auto: on this project's local server only."""
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
        return sorted(available) if self.pipelines == "all" else list(self.pipelines)

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


def describe_errors(exc: ValidationError, files: list[Path]) -> str:
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not str(part).startswith(("function-", "literal["))]
        key = ".".join(loc) or "(top level)"
        where = _files_with_key(files, error["loc"]) or files
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling against the configuration reference"
        lines.append(f"  {_display(where)}: key `{key}`: {message}")
    return "Invalid prefect config:\n" + "\n".join(lines)


def _display(files: list[Path]) -> str:
    if not files:
        return "conf/<env>/prefect.yml"
    cwd = Path.cwd()
    shown = []
    for path in files:
        try:
            shown.append(str(path.resolve().relative_to(cwd)))
        except ValueError:
            shown.append(str(path))
    return " or ".join(shown)


def _files_with_key(files: list[Path], loc: tuple[Any, ...]) -> list[Path]:
    """The files whose YAML holds the top-level key of `loc`."""
    if not loc:
        return []
    matches = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and loc[0] in data:
            matches.append(path)
    return matches
