"""Kedro node tags as Prefect tag concurrency limits (`run.node_tags.<tag>.concurrency`), kept at registration.

Node tasks carry their Kedro tags, so Prefect itself holds a tagged node until a slot is
free; the plugin only keeps the limits. A tag's limit is server-wide: every task run with
the tag counts, whatever its run, deployment or project. The plugin owns the limits this
project and env set, as recorded in its bookkeeping variable: it changes them, and removes
them when their key goes (unless someone changed the value since). A limit it did not set
and that holds another value is left alone, with a warning, as a deployment of another owner is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kedro_prefect_hooks.config import PrefectConfig

if TYPE_CHECKING:
    from kedro_prefect_hooks.prefect_api.client import PrefectApi

WRITES = ("create", "update", "remove")


@dataclass(frozen=True)
class TagLimitChange:
    tag: str
    action: str  # create | update | unchanged | remove | clash
    limit: int | None  # what prefect.yml sets; None for remove
    current: int | None  # what the server holds; None when it has no limit for the tag

    def describe(self) -> str:
        what = f"tag concurrency limit '{self.tag}'"
        if self.action == "clash":
            return (
                f"{what} is {self.current} on the server and was not set by this project and env: "
                f"not changed to {self.limit}; give the tag that value in prefect.yml, or delete the "
                "limit (Prefect UI: Concurrency) to let this project set it"
            )
        if self.action == "remove":
            return f"remove    {what} ({self.current}; its key left prefect.yml)"
        was = f" (was {self.current})" if self.action == "update" else ""
        return f"{self.action:9s} {what}: {self.limit}{was}"


def wanted_tag_limits(config: PrefectConfig, pipelines: list[str]) -> dict[str, int]:
    """Tag -> limit over the selected pipelines; a tag given two values is a config error."""
    values: dict[str, dict[int, list[str]]] = {}
    for pipeline in pipelines:
        for tag, options in config.options_for(pipeline).run.node_tags.items():
            if options.concurrency is not None:
                values.setdefault(tag, {}).setdefault(options.concurrency, []).append(pipeline)
    for tag, by_value in values.items():
        if len(by_value) > 1:
            given = "; ".join(f"{limit} for {', '.join(names)}" for limit, names in sorted(by_value.items()))
            raise config.error(
                f"run.node_tags.{tag}.concurrency",
                f"the pipelines give the tag different limits ({given}), but one limit holds for every "
                f"run on the server: set it once, in defaults.run.node_tags.{tag}.concurrency",
            )
    return {tag: next(iter(by_value)) for tag, by_value in sorted(values.items())}


def tag_limit_changes(
    client: PrefectApi, wanted: dict[str, int], previous: dict[str, int]
) -> list[TagLimitChange]:
    """What keeping the limits would do, judged against the server; `previous`: what this project and env set."""
    changes = []
    for tag, limit in wanted.items():
        current = client.tag_limit(tag)
        if current is None:
            action = "create"
        elif current == limit:
            action = "unchanged"
        else:
            action = "update" if tag in previous else "clash"
        changes.append(TagLimitChange(tag, action, limit, current))
    for tag, limit in previous.items():
        if tag not in wanted and client.tag_limit(tag) == limit:
            changes.append(TagLimitChange(tag, "remove", None, limit))
    return changes


def keep_tag_limits(
    client: PrefectApi, wanted: dict[str, int], previous: dict[str, int]
) -> list[TagLimitChange]:
    """Bring the server's tag limits to `wanted`; returns every change judged (writes and clashes)."""
    changes = tag_limit_changes(client, wanted, previous)
    for change in changes:
        if change.action in ("create", "update") and change.limit is not None:
            client.set_tag_limit(change.tag, change.limit)
        elif change.action == "remove":
            client.delete_tag_limit(change.tag)
    return [c for c in changes if c.action != "unchanged"]


def recorded_tag_limits(record: object) -> dict[str, int]:
    """The limits a bookkeeping variable says this project and env set."""
    limits = record.get("concurrency") if isinstance(record, dict) else None
    return {str(k): v for k, v in limits.items() if isinstance(v, int)} if isinstance(limits, dict) else {}
