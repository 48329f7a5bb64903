"""What a flow run did, node by node: collected while it runs, published as a markdown artifact."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from kedro_prefect_hooks.compat import dataset_description


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
    location: str


class RunReport:
    """Node states and durations of one run; tasks in several threads write to it."""

    def __init__(self, pipeline: str, env: str | None, node_names: list[str]):
        self.pipeline = pipeline
        self.env = env
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

    def markdown(self) -> str:
        counts: dict[str, int] = {}
        for record in self.nodes.values():
            counts[record.state] = counts.get(record.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines = [
            f"# Kedro pipeline `{self.pipeline}`",
            "",
            f"- env: `{self.env or 'default'}`",
            f"- save version: `{self.save_version or '-'}`",
            f"- nodes: {len(self.nodes)} ({summary or 'none'})",
            "",
            "| node | state | seconds | attempts |",
            "|---|---|---:|---:|",
        ]
        for record in self.nodes.values():
            state = record.state if not record.error else f"{record.state}: {_cell(record.error)}"
            lines.append(f"| `{_cell(record.name)}` | {state} | {record.seconds:.3f} | {record.attempts} |")
        lines += ["", "## Datasets written", ""]
        if self.written:
            lines += ["| dataset | type | location |", "|---|---|---|"]
            lines += [f"| `{_cell(d.name)}` | {_cell(d.type)} | {_cell(d.location)} |" for d in self.written]
        else:
            lines.append("None (only in-memory datasets, or no node completed).")
        return "\n".join(lines) + "\n"


def describe_dataset(name: str, dataset: Any) -> WrittenDataset | None:
    """A persisted output of the run; None for in-memory datasets, which nothing keeps."""
    kind = type(dataset).__name__
    if kind in ("MemoryDataset", "SharedMemoryDataset"):
        return None
    description = dataset_description(dataset)
    location = description.get("filepath") or description.get("path") or ""
    return WrittenDataset(name=name, type=kind, location=str(location))


def artifact_key(pipeline: str) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes only."""
    return "kedro-" + (re.sub(r"[^a-z0-9]+", "-", pipeline.lower()).strip("-") or "pipeline")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
