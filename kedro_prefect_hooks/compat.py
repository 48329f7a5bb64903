"""Every private or version-dependent Kedro and Prefect API the plugin uses, in one place.

Each function says what it relies on and what happens if that changes, so a new
Kedro or Prefect release breaks here, visibly, and never silently elsewhere.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, as a package
    import tomli as tomllib


@contextmanager
def all_pipelines_visible(pipelines: Any) -> Iterator[None]:
    """Lift the filter `kedro run --pipelines a` puts on the registry (Kedro >= 1.5), then restore it.

    Private: `_ProjectPipelines._requested_pipelines` (Kedro has a setter,
    `set_requested`, but no getter). If it is renamed, the filter is lifted and not
    restored: the command then loads every pipeline, slower but correct; what we
    register never shrinks to the command's selection.
    """
    set_requested = getattr(pipelines, "set_requested", None)
    if set_requested is None:  # Kedro < 1.5 always loads every pipeline
        yield
        return
    missing = object()
    requested = getattr(pipelines, "_requested_pipelines", missing)
    set_requested(None)
    try:
        yield
    finally:
        if requested is not missing:
            set_requested(requested)


def run_session(session: Any, pipeline: str, runner: Any, **filters: Any) -> Any:
    """`session.run` for one pipeline: `pipeline_names` since Kedro 1.2, `pipeline_name` before."""
    if "pipeline_names" in inspect.signature(session.run).parameters:
        return session.run(pipeline_names=[pipeline], runner=runner, **filters)
    return session.run(pipeline_name=pipeline, runner=runner, **filters)


def dataset_description(dataset: Any) -> dict[str, Any]:
    """A Kedro dataset's own description (filepath, version...).

    Private but implemented by every Kedro dataset: `AbstractDataset._describe()`.
    Returns {} when it is missing or fails, so a report never breaks a run.
    """
    try:
        description = dataset._describe()
    except Exception:
        return {}
    return description if isinstance(description, dict) else {}


def suggest_resume(runner: Any, pipeline: Any, done_nodes: list, catalog: Any) -> None:
    """Kedro's "you can resume with --from-nodes ..." log line.

    Private: `AbstractRunner._suggest_resume_scenario`; skipped if it is gone.
    """
    suggest = getattr(runner, "_suggest_resume_scenario", None)
    if suggest is not None:
        suggest(pipeline, done_nodes, catalog)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file (pyproject.toml, Prefect's profiles.toml); tomllib is 3.11+, tomli before."""
    return tomllib.loads(path.read_text())


TOMLDecodeError = tomllib.TOMLDecodeError


def import_prefect() -> None:
    """Import what registration needs from prefect without letting it take over logging.

    On its first full import prefect runs `logging.config.dictConfig` and, seeing
    Kedro's rich handler as no "user handler", swaps the root handlers for its own.
    Any import failure becomes PrefectUnavailable, which the hook reports like an
    API error instead of failing the Kedro command.
    """
    from kedro_prefect_hooks.api import PrefectUnavailable

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
