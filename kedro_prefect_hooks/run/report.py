"""What a flow run did, node by node: collected while it runs, published as a markdown artifact."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.compat import dataset_description, saved_version_path


@dataclass
class NodeRecord:
    name: str
    state: str = "not run"  # -> "running" -> "completed" | "failed"
    seconds: float = 0.0
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True)
class WrittenDataset:
    name: str
    type: str
    location: str  # for a versioned dataset, the version this run wrote


class RunReport:
    """Node states and durations of one run; tasks in several threads write to it."""

    def __init__(self, pipeline: str, env: str | None, node_names: list[str]):
        self.pipeline = pipeline
        self.env = env  # as the run was asked; None: Kedro's default
        self.save_version: str | None = None
        self.nodes = {name: NodeRecord(name) for name in node_names}
        self.written: list[WrittenDataset] = []
        self._lock = threading.Lock()

    def set_nodes(self, node_names: list[str]) -> None:
        """The nodes that will run, once Kedro has applied the run's filters."""
        with self._lock:
            self.nodes = {name: NodeRecord(name) for name in node_names}

    def started(self, node: str) -> None:
        with self._lock:
            record = self.nodes.setdefault(node, NodeRecord(node))
            record.state = "running"
            record.attempts += 1

    def finished(self, node: str, seconds: float, error: BaseException | None = None) -> None:
        with self._lock:
            record = self.nodes[node]
            record.seconds += seconds
            record.state = "failed" if error else "completed"
            record.error = f"{type(error).__name__}: {error}" if error else None

    def skipped(self, node: str, reason: str) -> None:
        """A node a resumed attempt does not run again."""
        with self._lock:
            record = self.nodes.setdefault(node, NodeRecord(node))
            record.state = "skipped"
            record.error = reason

    def failed_node(self) -> str | None:
        """The first node that failed in this process, if any."""
        with self._lock:
            return next((r.name for r in self.nodes.values() if r.state == "failed"), None)

    def failed_remotely(self, node: str, error: str) -> None:
        """A node failed in another process (a Dask worker), which reports only its name and error."""
        with self._lock:
            record = self.nodes.setdefault(node, NodeRecord(node))
            record.state, record.error = "failed", error
            record.attempts = max(record.attempts, 1)

    def completed_nodes(self) -> list[str]:
        return [r.name for r in self.nodes.values() if r.state == "completed"]

    def env_text(self) -> str:
        """The env the run read its config from: the flow runs in the project's directory."""
        from kedro_prefect_hooks.project import env_in_force

        try:
            env, is_default = env_in_force(Path.cwd(), self.env)
        except Exception:  # e.g. the session could not be built: say what was asked
            return escape_markdown(self.env or "Kedro's default run env")
        return escape_markdown(env) + (" (the project's default run env)" if is_default else "")

    def description(self) -> str:
        """The artifact's description, which the Prefect UI renders as markdown too.

        A retried attempt reads the save version back from it (run/resume.py).
        """
        return (
            f"Kedro pipeline {escape_markdown(self.pipeline)}: nodes and datasets of this run "
            f"(save version {self.save_version})"
        )

    def markdown(self) -> str:
        counts: dict[str, int] = {}
        for record in self.nodes.values():
            counts[record.state] = counts.get(record.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines = [
            f"# Kedro pipeline {escape_markdown(self.pipeline)}",
            "",
            f"- env: {self.env_text()}",
            f"- save version: {escape_markdown(self.save_version or '-')}",
            f"- nodes: {len(self.nodes)} ({summary or 'none'})",
            "",
            "| node | state | seconds | attempts |",
            "|---|---|---:|---:|",
        ]
        for record in self.nodes.values():
            state = record.state if not record.error else f"{record.state}: {escape_markdown(record.error)}"
            lines.append(
                f"| {escape_markdown(record.name)} | {state} | {record.seconds:.3f} | {record.attempts} |"
            )
        lines += ["", "## Datasets written", ""]
        if self.written:
            lines += ["| dataset | type | location |", "|---|---|---|"]
            lines += [
                f"| {escape_markdown(d.name)} | {escape_markdown(d.type)} | {escape_markdown(d.location)} |"
                for d in self.written
            ]
        else:
            lines.append("None (only in-memory datasets, or no node completed).")
        return "\n".join(lines) + "\n"


def describe_dataset(name: str, dataset: Any) -> WrittenDataset | None:
    """A persisted output of the run; None for in-memory datasets, which nothing keeps."""
    kind = type(dataset).__name__
    if kind in ("MemoryDataset", "SharedMemoryDataset"):
        return None
    description = dataset_description(dataset)
    location = saved_version_path(dataset) or description.get("filepath") or description.get("path") or ""
    return WrittenDataset(name=name, type=kind, location=str(location))


def artifact_key(pipeline: str) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes only."""
    return "kedro-" + (re.sub(r"[^a-z0-9]+", "-", pipeline.lower()).strip("-") or "pipeline")


def escape_markdown(text: object) -> str:
    """`text` shown as written: Kedro names like `__default__` would otherwise render bold,
    and a `|` would end a table cell. One line, for a table cell."""
    return re.sub(r"([\\`*_\[\]<>|~])", r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")
