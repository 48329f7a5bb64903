"""How a flow run executes the nodes (`run:`): read inside the run, so changing it needs no registration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kedro_prefect_hooks.config.base import _Model


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
