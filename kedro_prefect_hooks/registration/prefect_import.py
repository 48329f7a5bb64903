"""What registration needs from prefect itself: the one place the hook's process imports it.

Two facts come from the installed prefect, not from the server or the project: the flow's
parameter schema (the UI's run form) and the process pool's base job template. Importing
prefect for them costs 1-2 s, so they are kept for this plugin, prefect and pydantic
version in Prefect's home folder, for every project on the machine: a first registration
of the next project, or a first one on a new server, then imports nothing of prefect.

Here, not in compat.py, since it imports the plugin's own flow module (for the flow's
parameter schema): compat.py, which every layer uses, then imports nothing of ours.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.local.state import is_text_map, read_state, write_private
from kedro_prefect_hooks.prefect_api.errors import PrefectUnavailable
from kedro_prefect_hooks.prefect_api.prefect_settings import prefect_home
from kedro_prefect_hooks.version import __version__

FACTS_FILE = "kedro-prefect-hooks/prefect-facts.json"  # under Prefect's home folder


@dataclass(frozen=True)
class PrefectFacts:
    """What a writing registration takes from the installed prefect, read once per registration."""

    flow_parameter_schema: dict[str, Any]  # the flow's parameters as the UI's run form needs them
    process_pool_template: dict[str, Any]  # the base job template Prefect gives a new process pool


def prefect_facts() -> PrefectFacts:
    facts = _facts()
    return PrefectFacts(facts["schema"], facts["process_template"])


def facts_path() -> Path:
    return prefect_home() / FACTS_FILE


def _facts() -> dict[str, Any]:
    key = _installed_key()
    cached = read_state(facts_path(), _facts_problem)
    if cached is not None and cached["key"] == key:
        return cached
    import_prefect()
    from prefect.utilities.callables import parameter_schema
    from prefect.workers.process import ProcessWorker

    from kedro_prefect_hooks.flow import kedro_pipeline

    facts = {
        "key": key,
        "schema": parameter_schema(kedro_pipeline).model_dump(exclude_unset=True),
        "process_template": ProcessWorker.get_default_base_job_template(),
    }
    with contextlib.suppress(OSError):  # a read-only home: computed again next time, nothing worse
        write_private(facts_path(), json.dumps(facts))
    return facts


def _installed_key() -> str:
    """What the facts depend on: these versions, and the flow module's code (an editable install's
    version stays the same while its code changes; two copies of one release hash the same)."""
    flow = hashlib.sha256((Path(__file__).resolve().parents[1] / "flow.py").read_bytes()).hexdigest()[:16]
    versions = "|".join(f"{name} {_installed_version(name)}" for name in ("prefect", "pydantic"))
    return f"{__version__}|{versions}|flow.py {flow}"


def _facts_problem(data: Any) -> str | None:
    if not (isinstance(data, dict) and set(data) == {"key", "schema", "process_template"}):
        return "not a key, a schema and a job template"
    schema, template = data["schema"], data["process_template"]
    if not isinstance(data["key"], str) or not (
        isinstance(schema, dict) and is_text_map(schema.get("properties"), dict)
    ):
        return "the schema has no properties"
    if not (isinstance(template, dict) and is_text_map(template.get("job_configuration"), object)):
        return "the job template has no job configuration"
    return None


def _installed_version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


def import_prefect() -> None:
    """Import what registration needs from prefect without letting it take over logging.

    On its first full import prefect runs `logging.config.dictConfig` and, seeing
    Kedro's rich handler as no "user handler", swaps the root handlers for its own.
    Any import failure becomes PrefectUnavailable, which the hook reports like an
    API error instead of failing the Kedro command.
    """
    if "kedro_prefect_hooks.flow" in sys.modules and "prefect.workers.process" in sys.modules:
        return
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import prefect.workers.process  # noqa: F401  (the process pool's job template)

        import kedro_prefect_hooks.flow  # noqa: F401  (the flow's parameter schema)
    except Exception as exc:
        raise PrefectUnavailable(
            f"prefect could not be imported ({type(exc).__name__}: {exc}); "
            "check the install with `python -c 'import prefect.flows'`"
        ) from exc
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
