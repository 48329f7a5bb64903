"""What the plugin needs to know about the Kedro project and the session it runs in."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.compat import all_pipelines_visible, read_toml
from kedro_prefect_hooks.config.loader import loader_env
from kedro_prefect_hooks.local.state import (
    STATE_DIR,
    is_text_list,
    is_text_map,
    read_state,
    state_dir,
    write_private,
)


@dataclass(frozen=True)
class KedroProject:
    """What registration needs to know about the project and the session."""

    name: str
    package: str
    path: Path
    env: str | None  # as the session got it; None means Kedro's default run env
    run_env: str  # the env actually in force, for names and tags


def describe_project(project_path: Path | str, env: str | None, config_loader: Any) -> KedroProject:
    """Name, package, path and env of a project: from a session's context or a CLI command."""
    path = Path(project_path).resolve()
    metadata = read_toml(path / "pyproject.toml")["tool"]["kedro"]
    return KedroProject(
        name=metadata["project_name"],
        package=metadata["package_name"],
        path=path,
        env=env,
        run_env=run_env(env, config_loader),
    )


def session_env(env: str | None) -> str | None:
    """The env a KedroSession takes when asked for `env`: it, else KEDRO_ENV (KedroSession.create)."""
    return env or os.environ.get("KEDRO_ENV") or None


def run_env(env: str | None, config_loader: Any) -> str:
    """The env in force for a session env `env` (session_env's) and its config loader: Kedro's
    rule, the one every part of the plugin uses (names, tags, the run's report)."""
    return env or loader_env(config_loader) or getattr(config_loader, "base_env", None) or "base"


@dataclass(frozen=True)
class FoundPipelines:
    names: list[str]
    problems: list[str]  # what the registry warned about, e.g. a pipeline module that failed to import
    parameters: dict[str, list[str]] = field(
        default_factory=dict
    )  # pipeline -> parameter keys its nodes take
    outputs: dict[str, list[str]] = field(default_factory=dict)  # pipeline -> datasets its nodes write


def registered_pipelines(
    project: KedroProject, use_cache: bool = False, wanted: Iterable[str] = ()
) -> FoundPipelines:
    """Every pipeline the project registers, even when the command asked for a few.

    Importing pipeline modules can take seconds (scikit-learn, plotting), so a session
    (`use_cache`) reads the names from .kedro-prefect/pipelines.json while nothing the
    registry depends on, as far as can be seen, has changed: the package's Python files,
    and every other file under the project the last load imported or opened (modules
    outside the package, YAML in conf/). It cannot see environment variables or installed
    packages: a name in `wanted` (the pipelines the command runs) that the cache lacks
    makes it look again, and the `kedro prefect` commands always load the registry.
    """
    if use_cache and (cached := cached_pipelines(project, wanted)) is not None:
        return cached
    found, read = _load_registry(project.path)
    package = _package_fingerprint(project.package)
    if not found.problems and package:  # a failed import may be fixed without touching a file
        entry = {
            "package": package,
            "files": _stamps(read),
            "names": found.names,
            "parameters": found.parameters,
            "outputs": found.outputs,
        }
        write_private(_cache_path(project), json.dumps(entry))
    return found


def cached_pipelines(project: KedroProject, wanted: Iterable[str] = ()) -> FoundPipelines | None:
    """The pipelines as the cache has them while it is current (see registered_pipelines); else None."""
    cached = read_state(_cache_path(project), _cache_problem)
    if cached is None or not _still_current(cached, project) or not set(wanted) <= set(cached["names"]):
        return None
    return FoundPipelines(list(cached["names"]), [], dict(cached["parameters"]), dict(cached["outputs"]))


def has_pipeline_cache(project: KedroProject) -> bool:
    """Whether the registry was loaded here before (a stale cache is still one)."""
    return _cache_path(project).exists()


def _cache_path(project: KedroProject) -> Path:
    return state_dir(project.path) / "pipelines.json"


def _cache_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or not is_text_list(data.get("names")):
        return "no list of pipeline names"
    parameters = data.get("parameters")
    if not isinstance(parameters, dict) or not all(is_text_list(v) for v in parameters.values()):
        return "no parameter keys per pipeline"
    if "files" in data and not (is_text_map(data["files"]) and isinstance(data.get("package"), str)):
        return "no fingerprint of what the registry read"
    return None  # a 0.2.0 cache (a package fingerprint only) is valid, and never current


def _still_current(cached: dict[str, Any], project: KedroProject) -> bool:
    files = cached.get("files")
    if files is None or cached.get("package") != _package_fingerprint(project.package):
        return False
    outputs = cached.get("outputs")  # a cache written before outputs were kept is read again once
    if not isinstance(outputs, dict) or not all(is_text_list(v) for v in outputs.values()):
        return False
    return _stamps(list(files)) == files


def _stamps(paths: list[str]) -> dict[str, str]:
    """Size and modification time of each file ("missing" when it is gone)."""
    stamps = {}
    for path in paths:
        try:
            stat = os.stat(path)
            stamps[path] = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamps[path] = "missing"
    return stamps


def _load_registry(project_path: Path) -> tuple[FoundPipelines, list[str]]:
    """The registry's pipeline names, loading every pipeline; and the project files that load read.

    Since Kedro 1.5, `kedro run --pipelines a` makes the registry load only `a`;
    the filter is lifted for this one read and put back, so the run loads what it asked.
    Kedro's `find_pipelines` skips a module that fails to import with a warning:
    those warnings are kept, so that such a pipeline is never taken as removed.
    """
    from kedro.framework.project import pipelines

    with all_pipelines_visible(pipelines), warnings.catch_warnings(record=True) as caught, _reads() as opened:
        warnings.simplefilter("always")
        names = sorted(pipelines.keys())
        parameters = {name: parameter_keys(pipelines[name]) for name in names}
        outputs = {name: sorted(pipelines[name].all_outputs()) for name in names}
    for warning in caught:  # shown as they would have been
        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    problems = [str(w.message).splitlines()[0] for w in caught if "kedro" in Path(w.filename).parts]
    imported = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    read = _project_files([*opened, *(f for f in imported if isinstance(f, str))], project_path)
    return FoundPipelines(names, problems, parameters, outputs), read


_OPENED: list[str] | None = None  # while a registry load runs: every path opened
_AUDITING = False


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and args and isinstance(args[0], str):
        _OPENED.append(args[0])


@contextmanager
def _reads() -> Iterator[list[str]]:
    """The paths this process opens meanwhile (Python's audit hook: imports and open() alike)."""
    global _OPENED, _AUDITING
    if not _AUDITING:
        sys.addaudithook(_audit)  # cannot be removed: it does nothing outside this block
        _AUDITING = True
    opened: list[str] = []
    _OPENED = opened
    try:
        yield opened
    finally:
        _OPENED = None


def _project_files(paths: list[str], project_path: Path) -> list[str]:
    """The files under the project among `paths`: sources for compiled modules, no state, no venv."""
    root = Path(project_path).resolve()
    prefixes = (str(root), str(project_path))
    found = set()
    for raw in paths:
        if os.path.isabs(raw) and not raw.startswith(prefixes):
            continue  # the cheap test first: thousands of installed modules are never under the project
        path = Path(raw)
        if path.suffix == ".pyc" and path.parent.name == "__pycache__":
            path = path.parent.parent / (path.name.split(".", 1)[0] + ".py")
        try:
            relative = path.resolve().relative_to(root)
        except (ValueError, OSError):
            continue
        if relative.parts[:1] != (STATE_DIR,) and not {"site-packages", "dist-packages"} & set(
            relative.parts
        ):
            found.add(str(root / relative))
    return sorted(found)


def parameter_keys(pipeline: Any) -> list[str]:
    """The parameters a pipeline's nodes take: "model_options" for `params:model_options`,
    "model_options.test_size" for a nested one, "" for the whole `parameters`."""
    keys = set()
    for dataset in pipeline.inputs() | {i for node in pipeline.nodes for i in node.inputs}:
        if dataset == "parameters":
            keys.add("")
        elif dataset.startswith("params:"):
            keys.add(dataset.removeprefix("params:"))
    return sorted(keys)


def pipeline_parameters(found: FoundPipelines, config_loader: Any, pipelines: list[str]) -> dict[str, dict]:
    """Each pipeline's parameters with their current values, nested as in parameters.yml.

    Read from the session's env (base and env merged, as Kedro does); {} without parameters.
    """
    try:
        values = config_loader["parameters"]
    except Exception:  # no parameters files: nothing to show
        return {}
    return {p: parameter_subtree(values, found.parameters.get(p, [])) for p in pipelines}


def parameter_subtree(values: dict, keys: list[str]) -> dict:
    """The part of `values` that `keys` (dotted, "" for all) name, nested."""
    if "" in keys:
        return dict(values)
    subtree: dict = {}
    for key in keys:
        parts = key.split(".")
        node: Any = values
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            target = subtree
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = node
    return subtree


def registry_inputs(project: KedroProject) -> str:
    """A hash of what the cache's check looks at: the package's Python files, and the other files
    the last load read (path, size, mtime). Loading again while it is unchanged gives the same."""
    cached = read_state(_cache_path(project), _cache_problem) or {}
    stamps = _stamps(sorted(cached.get("files") or {}))
    text = _package_fingerprint(project.package) + json.dumps(stamps, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _package_fingerprint(package: str) -> str:
    """A hash of the path, size and modification time of every Python file of the package; "" if unknown."""
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    stats = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(f for f in files if f.endswith(".py")):
                stat = os.stat(os.path.join(root, name))
                stats.append(f"{os.path.join(root, name)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(stats).encode()).hexdigest()[:16] if stats else ""


def inside_prefect_run() -> bool:
    """True in a Prefect flow or task run: a worker's subprocess, or a flow called in-process."""
    if os.environ.get("PREFECT__FLOW_RUN_ID"):
        return True
    context = sys.modules.get("prefect.context")  # only when prefect is already loaded
    return bool(context and (context.FlowRunContext.get() or context.TaskRunContext.get()))


def project_config_loader(project_path: Path, env: str | None, runtime_params: dict | None = None) -> Any:
    """The config loader a session of this bootstrapped project would build, without a session."""
    from kedro.framework.project import settings

    return settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project_path) / settings.CONF_SOURCE),
        env=env,
        runtime_params=runtime_params,
        **settings.CONFIG_LOADER_ARGS,
    )


def reads_like_a_command(loader: Any, project_path: Path) -> bool:
    """Whether `kedro prefect register --env <env>` would read the config this loader reads:
    no runtime params (prefect.yml may interpolate them) and the project's own conf source."""
    from kedro.framework.project import settings

    if getattr(loader, "runtime_params", None):
        return False
    source = getattr(loader, "conf_source", None)
    return source is not None and Path(source).resolve() == (project_path / settings.CONF_SOURCE).resolve()


def project_catalog(project_path: Any, env: str | None, params: dict[str, Any] | None) -> Any:
    """The project's catalog as a run in `env` with runtime `params` builds it (datasets stay lazy)."""
    return loader_catalog(project_config_loader(project_path, env, params))


def loader_catalog(loader: Any) -> Any:
    """The catalog a config loader's files make, without Kedro's hooks (datasets stay lazy)."""
    from kedro.config import MissingConfigException
    from kedro.framework.project import settings

    try:
        credentials = loader["credentials"]
    except MissingConfigException:
        credentials = {}
    return settings.DATA_CATALOG_CLASS.from_config(catalog=loader["catalog"], credentials=credentials)
