"""Kedro datasets as Prefect assets: each task materializes the persisted outputs of its nodes.

A unit's task becomes Prefect's own `MaterializingTask`, so Prefect emits the events
(`prefect.asset.materialization.succeeded` / `.failed`, `prefect.asset.referenced` for
the inputs) with the resource shapes `@materialize` gives them: Prefect Cloud's lineage
graph draws them, and the OSS server's event feed, automations and deployment triggers
match them. The asset key is the dataset's URI (protocol and path; a versioned dataset
keeps one key, its version goes in the payload), else `kedro://<project>/<dataset>`.
In-memory datasets and parameters are not assets. Nothing here loads data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kedro_prefect_hooks.asset_keys import asset_key, is_parameters
from kedro_prefect_hooks.compat import is_versioned
from kedro_prefect_hooks.run.units import WorkUnit, in_memory

MATERIALIZED_BY = "kedro"


@dataclass(frozen=True)
class RunFacts:
    """What every event of one run says of it."""

    project: str
    env: str | None
    pipeline: str
    save_version: str | None


@dataclass
class UnitAssets:
    """The assets of one unit's task: what it materializes, what it reads, and each output's payload."""

    outputs: list[Any] = field(default_factory=list)  # prefect Asset
    inputs: list[Any] = field(default_factory=list)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset key -> event payload


def unit_assets(unit: WorkUnit, catalog: Any, facts: RunFacts) -> UnitAssets:
    """The persisted outputs of a unit's nodes, and the persisted inputs it reads from outside it."""
    made_inside = {output for node in unit.nodes for output in node.outputs}
    found = UnitAssets()
    for node in unit.nodes:
        for name in node.outputs:
            dataset = _persisted(name, catalog)
            if dataset is None:
                continue
            asset = _asset(name, dataset, facts.project)
            found.outputs.append(asset)
            found.payloads[asset.key] = _payload(name, dataset, node.name, facts)
        for name in node.inputs:
            if name in made_inside or (dataset := _persisted(name, catalog)) is None:
                continue
            found.inputs.append(_asset(name, dataset, facts.project))
    found.inputs = list({asset.key: asset for asset in found.inputs}.values())
    return found


def _asset(name: str, dataset: Any, project: str) -> Any:
    """The same Asset wherever the dataset appears: Prefect also inherits an upstream task's
    assets (through wait_for), and two Assets of one key but other properties are two events."""
    from prefect.assets import Asset, AssetProperties

    properties = AssetProperties(name=name, description=_description(dataset))
    return Asset(key=asset_key(name, dataset, project), properties=properties)


def materializing(template: Any, assets: UnitAssets, settings: dict[str, Any]) -> Any:
    """`template`'s body as Prefect's MaterializingTask of the unit's assets: what `@materialize`
    makes, so the task engine emits the asset events itself when the task ends."""
    from prefect.tasks import MaterializingTask

    return MaterializingTask(
        fn=template.fn,
        assets=assets.outputs,
        materialized_by=MATERIALIZED_BY,
        asset_deps=assets.inputs or None,
        cache_policy=template.cache_policy,
        persist_result=template.persist_result,
        **settings,
    )


def record_payloads(payloads: dict[str, dict[str, Any]]) -> None:
    """Inside a materializing task: the payload of each materialization event it will emit."""
    from prefect.context import AssetContext

    context = AssetContext.get()
    if context is None:
        return
    for key, payload in payloads.items():
        context.add_asset_metadata(key, payload)


def _persisted(name: str, catalog: Any) -> Any | None:
    """The catalog's dataset for `name`, unless it lives in memory (parameters do too)."""
    if is_parameters(name) or in_memory(name, catalog):
        return None
    try:
        return catalog.get(name)
    except Exception:
        return None


def _description(dataset: Any) -> str | None:
    """The `description` of the dataset's catalog `metadata:`, if it has one."""
    metadata = getattr(dataset, "metadata", None)
    if isinstance(metadata, dict) and isinstance(metadata.get("description"), str):
        return metadata["description"][:2500]
    return None


def _payload(name: str, dataset: Any, node: str, facts: RunFacts) -> dict[str, Any]:
    """What the event says of the run and the dataset; only what the dataset knows without a load."""
    kedro: dict[str, Any] = {
        "project": facts.project,
        "env": facts.env,
        "pipeline": facts.pipeline,
        "node": node,
        "dataset": name,
        "type": f"{type(dataset).__module__}.{type(dataset).__qualname__}",
        "save_version": facts.save_version,
    }
    if is_versioned(dataset):
        kedro["version"] = facts.save_version
    metadata = getattr(dataset, "metadata", None)
    if isinstance(metadata, dict) and metadata:
        kedro["metadata"] = _plain(metadata)
    return {"kedro": kedro}


def _plain(value: Any) -> Any:
    """JSON-safe: an event payload is sent as JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
