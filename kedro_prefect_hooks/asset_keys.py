"""The asset key of a Kedro dataset: its URI, the same for a run that writes it and a deployment
that waits for it (`after_datasets`). Imports nothing of ours but compat; loads no data."""

from __future__ import annotations

import os
from typing import Any

from kedro_prefect_hooks.compat import dataset_description, is_memory_dataset_type

# Prefect refuses these in an asset key (prefect.types.names.RESTRICTED_ASSET_CHARACTERS).
_RESTRICTED = set("\n\r\t\0 #?&%\"'<>[]{}|\\^`")
_MAX_KEY_LENGTH = 512


def asset_key(name: str, dataset: Any, project: str, base: str | None = None) -> str:
    """The dataset's URI, e.g. `file:///abs/data/x.parquet` or `s3://bucket/key`; for a dataset
    without a path (or with characters Prefect refuses in a key), `kedro://<project>/<name>`.
    A relative local path is taken under `base` (the project folder, as a session's catalog
    takes it), else under the working directory."""
    description = dataset_description(dataset)
    path = description.get("filepath") or description.get("path")
    protocol = str(description.get("protocol") or "file").lower()
    if path:
        path = str(path)
        if "://" in path:
            key = path
        elif protocol == "file":  # a session's catalog has absolute paths; a bare one may not
            key = "file://" + os.path.abspath(os.path.join(base or os.getcwd(), path))
        else:
            key = f"{protocol}://{path}"
        if _usable(key):
            return key
    return f"kedro://{_safe(project)}/{_safe(name)}"[:_MAX_KEY_LENGTH]


def catalog_asset_keys(
    names: list[str], catalog: Any, project: str, base: str | None = None
) -> dict[str, str]:
    """The asset key of each named dataset of the catalog; ValueError naming those that are not
    in the catalog (with what is) or live in memory (never materialized, so never an event)."""
    keys, unknown, in_memory, broken = {}, [], [], []
    for name in dict.fromkeys(names):
        try:  # builds the dataset: a missing filesystem package or a bad argument fails here
            dataset = catalog.get(name) if not is_parameters(name) and name in catalog else None
        except Exception as exc:
            broken.append(f"{name!r} cannot be built ({type(exc).__name__}: {exc})")
            continue
        if dataset is None:
            unknown.append(name)
        elif is_memory_dataset_type(type(dataset).__name__):
            in_memory.append(name)
        else:
            keys[name] = asset_key(name, dataset, project, base)
    problems = broken
    if unknown:
        available = sorted(n for n in catalog.keys() if not is_parameters(n))  # noqa: SIM118 (a DataCatalog)
        problems.append(f"{unknown} are not in the catalog; it has {available}")
    if in_memory:
        problems.append(
            f"{in_memory} are in-memory datasets, never materialized: declare them in the catalog"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return keys


def is_parameters(name: str) -> bool:
    """Kedro's parameters live in the catalog as in-memory datasets: never assets."""
    return name == "parameters" or name.startswith("params:")


def _usable(key: str) -> bool:
    """What Prefect accepts as a key: a lowercase protocol, no restricted character, 512 at most."""
    protocol = key.partition("://")[0]
    return (
        len(key) <= _MAX_KEY_LENGTH
        and bool(protocol)
        and all(c.islower() or c.isdigit() for c in protocol)
        and protocol.isascii()
        and not (_RESTRICTED & set(key))
    )


def _safe(text: str) -> str:
    return "".join("-" if character in _RESTRICTED or character == "/" else character for character in text)
