"""What a flow run did, node by node: collected while it runs, published as a markdown artifact.

The artifact is written by the flow itself before its run ends, so `kedro prefect run
--wait` reads the final counts and the resume point from it (`read_summary`), not from
the server's task-run records, which lag behind on a busy server.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.compat import dataset_description, is_memory_dataset_type, saved_version_path


@dataclass
class NodeRecord:
    name: str
    state: str = "not run"  # -> "running" -> "completed" | "failed"
    seconds: float = 0.0
    attempts: int = 0
    error: str | None = None
    where: str | None = None  # a child run's pool and link (markdown); None: this run


@dataclass(frozen=True)
class WrittenDataset:
    name: str
    type: str
    location: str  # for a versioned dataset, the version this run wrote


class RunReport:
    """Node states and durations of one run; tasks in several threads write to it."""

    def __init__(
        self,
        pipeline: str,
        env: str | None,
        node_names: list[str],
        env_in_force: tuple[str, bool] | None = None,
    ):
        self.pipeline = pipeline
        self.env = env  # as the run was asked; None: Kedro's default
        self.save_version: str | None = None
        self.nodes = {name: NodeRecord(name) for name in node_names}
        self.tasks: dict[str, list[str]] = {}  # task name -> its nodes, when tasks group nodes
        self.resume_from: list[str] = []  # after a failure: the nodes a resumed run starts from
        self.written: list[WrittenDataset] = []
        self._env_in_force = env_in_force  # the flow run's ProjectContext says; else worked out on demand
        self._lock = threading.Lock()

    def set_nodes(self, node_names: list[str]) -> None:
        """The nodes that will run, once Kedro has applied the run's filters."""
        with self._lock:
            self.nodes = {name: NodeRecord(name) for name in node_names}

    def set_tasks(self, tasks: dict[str, list[str]]) -> None:
        """The Prefect tasks of this attempt and their nodes; kept only when a task groups several."""
        with self._lock:
            self.tasks = tasks if any(nodes != [name] for name, nodes in tasks.items()) else {}

    def started(self, node: str) -> None:
        with self._lock:
            record = self.nodes.setdefault(node, NodeRecord(node))
            record.state = "running"
            record.attempts += 1

    def finished(
        self, node: str, seconds: float, error: BaseException | None = None, where: str | None = None
    ) -> None:
        with self._lock:
            record = self.nodes[node]
            record.where = where
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

    def env_in_force(self) -> tuple[str, bool] | None:
        """(the env the run read its config from, whether it is the project's default), worked
        out once (the flow runs in the project's directory); None if it cannot be."""
        from kedro_prefect_hooks.project_context import ProjectContext

        if self._env_in_force is None:
            try:
                self._env_in_force = ProjectContext.of_project(Path.cwd(), self.env).env_in_force
            except Exception:  # e.g. the session could not be built
                return None
        return self._env_in_force

    def env_text(self) -> str:
        if (found := self.env_in_force()) is None:  # say what was asked
            return escape_markdown(self.env or "Kedro's default run env")
        env, is_default = found
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
        lines = [
            f"# Kedro pipeline {escape_markdown(self.pipeline)}",
            "",
            f"- env: {self.env_text()}",
            f"- save version: {escape_markdown(self.save_version or '-')}",
            f"- nodes: {_counted([r.state for r in self.nodes.values()])}",
        ]
        if self.tasks:
            lines.append(f"- tasks: {_counted([self._task_state(nodes) for nodes in self.tasks.values()])}")
        if failed := [r.name for r in self.nodes.values() if r.state == "failed"]:
            lines.append(f"- failed nodes: {_names(failed)}")
        if self.resume_from:
            lines.append(f"- resume from: {_names(self.resume_from)}")
        lines += [
            "",
            "| node | state | seconds | attempts |",
            "|---|---|---:|---:|",
        ]
        for record in self.nodes.values():
            state = record.state if not record.error else f"{record.state}: {escape_markdown(record.error)}"
            lines.append(
                f"| {escape_markdown(record.name)} | {state} | {record.seconds:.3f} | {record.attempts} |"
            )
        if elsewhere := [r for r in self.nodes.values() if r.where]:
            lines += ["", "## Nodes run in child runs", "", "| node | where |", "|---|---|"]
            lines += [f"| {escape_markdown(r.name)} | {r.where} |" for r in elsewhere]
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

    def _task_state(self, nodes: list[str]) -> str:
        states = {self.nodes[n].state if n in self.nodes else "not run" for n in nodes}
        for state in ("failed", "running", "not run"):
            if state in states:
                return state
        return "completed"  # every node completed, or was skipped as completed before


def _counted(states: list[str]) -> str:
    """`3 (1 completed, 1 failed, 1 not run)`."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return f"{len(states)} ({', '.join(f'{n} {state}' for state, n in sorted(counts.items())) or 'none'})"


def _names(names: list[str]) -> str:
    """Names as a markdown list `a, b`: escaped, and a comma inside a name too, so they read back."""
    return ", ".join(escape_markdown(name).replace(",", "\\,") for name in names)


@dataclass(frozen=True)
class ReportSummary:
    """What a published report says about its run, read back by `kedro prefect run --wait`."""

    nodes: dict[str, int]  # state -> how many nodes
    tasks: dict[str, int] | None  # the same for tasks, when tasks group nodes
    failed_nodes: list[str]
    resume_from: list[str]

    @staticmethod
    def finished(counts: dict[str, int]) -> int:
        """Completed in this attempt, or skipped as completed in an earlier one."""
        return counts.get("completed", 0) + counts.get("skipped", 0)

    def counts(self, label: str) -> tuple[int, int, int]:
        """(completed, failed, total) of the tasks (`label` "tasks") or the nodes; with no task
        line, each task was one node."""
        counts = self.tasks if label == "tasks" and self.tasks is not None else self.nodes
        return self.finished(counts), counts.get("failed", 0), sum(counts.values())


SUMMARY_LINE = re.compile(r"^- (nodes|tasks|failed nodes|resume from): (.*)$", re.M)
COUNTS = re.compile(r"^(\d+) \((.*)\)$")
COUNT = re.compile(r"^(\d+) (.+)$")


def read_summary(markdown: str) -> ReportSummary | None:
    """The summary lines of `RunReport.markdown()`; None if they are not there (not our report)."""
    found = {key: value for key, value in SUMMARY_LINE.findall(markdown)}
    nodes = _read_counts(found.get("nodes", ""))
    if nodes is None:
        return None
    return ReportSummary(
        nodes=nodes,
        tasks=_read_counts(found.get("tasks", "")),
        failed_nodes=_read_names(found.get("failed nodes", "")),
        resume_from=_read_names(found.get("resume from", "")),
    )


def _read_counts(text: str) -> dict[str, int] | None:
    match = COUNTS.match(text.strip())
    if match is None:
        return None
    counts = {}
    for part in match.group(2).split(", "):
        if count := COUNT.match(part):
            counts[count.group(2)] = int(count.group(1))
    return counts


def _read_names(text: str) -> list[str]:
    """The inverse of `_names`: split at unescaped ", ", then drop the escapes."""
    names, current, chars = [], "", iter(text)
    for char in chars:
        if char == "\\":
            current += next(chars, "")
        elif char == "," and current:
            names.append(current)
            current = ""
        elif char == " " and not current:
            continue
        else:
            current += char
    return [*names, current] if current else names


def describe_dataset(name: str, dataset: Any) -> WrittenDataset | None:
    """A persisted output of the run; None for in-memory datasets, which nothing keeps."""
    kind = type(dataset).__name__
    if is_memory_dataset_type(kind):
        return None
    description = dataset_description(dataset)
    location = saved_version_path(dataset) or description.get("filepath") or description.get("path") or ""
    return WrittenDataset(name=name, type=kind, location=str(location))


def artifact_key(pipeline: str) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes only."""
    return "kedro-" + (re.sub(r"[^a-z0-9]+", "-", pipeline.lower()).strip("-") or "pipeline")


def sentence(text: str | None) -> str:
    """`text` as a sentence of a message that goes on: ended by a full stop unless it has one."""
    text = (text or "").strip() or "no message"
    return text if text[-1] in ".!?" else text + "."


def escape_markdown(text: object) -> str:
    """`text` shown as written: Kedro names like `__default__` would otherwise render bold,
    and a `|` would end a table cell. One line, for a table cell."""
    return re.sub(r"([\\`*_\[\]<>|~])", r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")
