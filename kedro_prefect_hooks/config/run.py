"""How a flow run executes the nodes (`run:`): read inside the run, so changing it needs no registration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kedro_prefect_hooks.config.base import (
    MAX_CONCURRENCY_LIMIT,
    MAX_INTERVAL_SECONDS,
    MAX_PROCESSES,
    MAX_RETRIES,
    _Model,
)
from kedro_prefect_hooks.config.work_pool import WorkPool


class TaskOptions(_Model):
    """Prefect task settings for the nodes carrying one Kedro tag (`run.node_tags.<tag>`)."""

    retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
    """Retries of a failed node carrying the tag."""
    retry_delay_seconds: float | None = Field(default=None, ge=0, le=MAX_INTERVAL_SECONDS)
    """Seconds between those retries."""
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    """A node (task) running longer fails; null: no limit."""
    concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY_LIMIT)
    """At most this many nodes carrying the tag run at once, across every run on the server: Prefect's tag concurrency limit, written at registration (removed when the key goes)."""
    work_pool: WorkPool | None = None
    """Nodes carrying the tag run in a child flow run on this pool (name required; created as a process pool when missing), with its job_variables, e.g. {name: gpu-pool, job_variables: {image: "acme/train:cuda"}}; written at registration as a helper deployment."""

    @model_validator(mode="after")
    def _pool_named(self) -> TaskOptions:
        if self.work_pool is not None and "name" not in self.work_pool.model_fields_set:
            raise ValueError("`work_pool` needs a `name`: the pool these nodes run on, e.g. {name: gpu-pool}")
        return self


TASK_SETTINGS = ("retries", "retry_delay_seconds", "timeout_seconds")  # what a node's task takes


class DaskOptions(_Model):
    """The Dask cluster of `task_runner: dask` (`run.dask`): an existing scheduler, or a temporary local one."""

    address: str | None = None
    """An existing scheduler, e.g. "tcp://dask-scheduler:8786"; null: a temporary local cluster of processes."""
    n_workers: int = Field(default=2, ge=1, le=MAX_PROCESSES)
    """Worker processes of the temporary local cluster."""
    threads_per_worker: int = Field(default=1, ge=1, le=MAX_PROCESSES)
    """Threads in each of those processes."""

    @model_validator(mode="after")
    def _address_or_local(self) -> DaskOptions:
        if self.address is not None and self.model_fields_set & {"n_workers", "threads_per_worker"}:
            raise ValueError(
                "give `address` (an existing scheduler) or `n_workers`/`threads_per_worker`, not both"
            )
        return self


class RunOptions(_Model):
    """How a flow run executes the pipeline's nodes; read inside the run, so no re-registration."""

    task_runner: Literal["sequential", "threads", "dask"] = "sequential"
    """sequential: one node at a time, as `kedro run`; threads: a node starts once its parents completed (see the caveat); dask: tasks in Dask worker processes (pip install 'kedro-prefect-hooks[dask]')."""
    max_workers: int = Field(default=8, ge=1, le=MAX_PROCESSES)
    """Threads running nodes at once (threads only)."""
    group_by: Literal["none", "namespace", "memory"] | None = None
    """none: one task per node; namespace: one per top-level namespace; memory: nodes joined by in-memory datasets form one task. Default: memory under dask, else none."""
    dask: DaskOptions = Field(default_factory=DaskOptions)
    """The cluster for `task_runner: dask`."""
    retries: int = Field(default=0, ge=0, le=MAX_RETRIES)
    """Prefect task retries of a failed node."""
    retry_delay_seconds: float = Field(default=0, ge=0, le=MAX_INTERVAL_SECONDS)
    """Seconds between retries."""
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    """A node (task) running longer fails; null: no limit."""
    assets: bool = True
    """Each node's task records its persisted outputs as Prefect assets (materialization events, with its persisted inputs as upstream assets); false: no asset events."""
    node_tags: dict[str, TaskOptions] = Field(default_factory=dict)
    """Per Kedro node tag: retries, retry_delay_seconds, timeout_seconds (the largest value of matching tags wins), and concurrency (a limit across runs). E.g. {flaky: {retries: 3}, db: {concurrency: 2}}."""

    @property
    def grouping(self) -> str:
        """The grouping in force: under dask, tasks in other processes can only share persisted data."""
        return self.group_by or ("memory" if self.task_runner == "dask" else "none")

    def pool_tag(self, node: str, tags: set[str] | frozenset[str]) -> str | None:
        """The tag whose `work_pool` a node with `tags` runs on; None: the run's own pool."""
        pooled = sorted(t for t in tags if t in self.node_tags and self.node_tags[t].work_pool is not None)
        if len(pooled) > 1:
            raise ValueError(
                f"node '{node}' carries tags {pooled}, each with a `run.node_tags.<tag>.work_pool`: "
                "a node runs on one pool; keep one of these tags on it, or the work_pool on one tag"
            )
        return pooled[0] if pooled else None

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
        for key in TASK_SETTINGS:
            values = [getattr(m, key) for m in matching if getattr(m, key) is not None]
            if values:
                setattr(chosen, key, max(values))
        return chosen
