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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

CONFIG_KEY = "prefect"
CONFIG_PATTERNS = ["prefect*", "prefect*/**", "**/prefect*"]
INIT_HINT = "create conf/base/prefect.yml (e.g. `pipelines: all`; see the kedro-prefect-hooks README)"

# Flow parameters a deployment may preset; kept equal to kedro_prefect_hooks.flow's
# signature by a test, so that this module does not import prefect.
FLOW_PARAMETERS = ("params", "tags", "node_names", "from_nodes", "to_nodes", "namespaces")
NAME_FIELDS = ("project", "pipeline", "env")


class ConfigError(ValueError):
    """The prefect config is invalid; the message names the file, the key and the fix."""


class _Model(BaseModel):
    # Field docstrings are read by docs/hooks.py for the configuration reference
    # (not at runtime: use_attribute_docstrings would cost each Kedro session 15 ms).
    model_config = ConfigDict(extra="forbid")


class Schedule(_Model):
    """One of cron, interval (seconds) or rrule, in a timezone."""

    cron: str | None = None
    """Five-field cron expression, e.g. "0 6 * * 1-5"."""
    interval: float | None = Field(default=None, gt=0)
    """Seconds between runs, e.g. 3600."""
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
        if value is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(value, dt.datetime(2020, 1, 1))
            except CronSimError as exc:
                raise ValueError(
                    f"invalid cron expression {value!r} ({exc}); "
                    "use five fields, e.g. '0 6 * * *' for 06:00 every day"
                ) from None
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
    concurrency_limit: int | None = Field(default=None, ge=1)
    """Runs of the deployment at once; null: no limit."""
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
        return value

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


class WorkerOptions(_Model):
    """The opt-in background worker for the work pool (`worker:`)."""

    start: bool = False
    """true: each Kedro session makes sure one background process worker serves the pool for this project."""
    limit: int | None = Field(default=None, ge=1)
    """Flow runs the worker executes at once; null: no limit."""
    query_seconds: float = Field(default=2.0, gt=0, le=60)
    """How often the worker asks Prefect for runs: a triggered run starts within this."""


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
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL; e.g. http://127.0.0.1:4200/api")
        return value.rstrip("/") if value else value

    def selected_pipelines(self, available: list[str]) -> list[str]:
        """The pipelines to register; raises ConfigError naming any unknown one."""
        for key, names in (("pipelines", self.pipelines), ("deployments", self.deployments)):
            unknown = [] if names == "all" else [p for p in names if p not in available]
            if unknown:
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


def config_files(config_loader: Any) -> list[Path]:
    """The files the `prefect` key reads, base first, for error messages."""
    conf_source = Path(getattr(config_loader, "conf_source", "conf"))
    envs = [config_loader.base_env, config_loader.env or config_loader.default_run_env]
    patterns = config_loader.config_patterns.get(CONFIG_KEY, CONFIG_PATTERNS)
    found: list[Path] = []
    for env in dict.fromkeys(e for e in envs if e):
        for pattern in patterns:
            for path in sorted((conf_source / env).glob(pattern)):
                if path.is_file() and path.suffix in (".yml", ".yaml", ".json") and path not in found:
                    found.append(path)
    return found


def load_config(config_loader: Any) -> PrefectConfig | None:
    """Read and validate the project's prefect config; None when there is none.

    Adds the `prefect` pattern and a soft merge only when the project set neither,
    so base and env files combine key by key, as users expect.
    """
    from kedro.config import MissingConfigException

    if CONFIG_KEY not in config_loader.config_patterns:
        config_loader.config_patterns[CONFIG_KEY] = list(CONFIG_PATTERNS)
    merge_strategy = getattr(config_loader, "merge_strategy", None)
    if isinstance(merge_strategy, dict):
        merge_strategy.setdefault(CONFIG_KEY, "soft")
    try:
        raw = config_loader[CONFIG_KEY]
    except MissingConfigException:
        return None
    return parse_config(raw, config_files(config_loader))


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
