"""The package keeps its shape: no import cycles between its modules, counting imports inside functions."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kedro_prefect_hooks"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Our modules a module imports, at its top or inside a function: a lazy import (kept lazy
    for start-up time) still ties the two modules together."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in modules}
    return found


def test_no_import_cycles():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {module_name(path): imports(path, modules) - {module_name(path)} for path in paths}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_each_phase_lives_in_its_own_subpackage():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} >= {
        "registration",
        "run",
        "local",
        "trigger",
        "prefect_api",
    }


def imported_by(subpackage: str) -> set[str]:
    """Our modules that the modules of `subpackage` import, outside it."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    inside = f"kedro_prefect_hooks.{subpackage}"
    found: set[str] = set()
    for path in (PACKAGE / subpackage).rglob("*.py"):
        found |= imports(path, modules)
    return {name for name in found if not name.startswith(inside)}


def test_the_prefect_api_layer_is_below_every_phase():
    """Which API, and the REST client, are used by registration, local processes and the trigger
    side; they import none of them (nor config), only compat."""
    assert imported_by("prefect_api") <= {"kedro_prefect_hooks", "kedro_prefect_hooks.compat"}


def test_config_imports_no_phase():
    """config/ checks user input; a phase may use it, never the other way round."""
    allowed = {"kedro_prefect_hooks", "kedro_prefect_hooks.compat", "kedro_prefect_hooks.run_options"}
    assert {
        name for name in imported_by("config") if not name.startswith("kedro_prefect_hooks.prefect_api")
    } <= allowed


def test_the_phases_sit_side_by_side():
    """registration/, run/ and local/ do not reach into each other (the state store, local/state.py,
    sits below them all), and the flow run needs nothing of registration's."""
    phases = ("registration", "run", "local")
    for phase in phases:
        others = {
            name
            for name in imported_by(phase)
            if any(name.startswith(f"kedro_prefect_hooks.{o}") for o in phases if o != phase)
        }
        assert others <= {"kedro_prefect_hooks.local.state"}, (phase, others)
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    flow_imports = imports(PACKAGE / "flow.py", modules)
    assert not {name for name in flow_imports if name.startswith("kedro_prefect_hooks.registration")}
