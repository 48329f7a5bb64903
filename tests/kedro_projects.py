"""Real Kedro projects for tests and benchmarks: `kedro new` (offline template) plus two pipelines."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
HOOK_SETTINGS = "\nfrom kedro_prefect_hooks import PrefectHook\n\nHOOKS = (PrefectHook(),)\n"

PIPELINES = {
    "data_processing": """
        from kedro.pipeline import Pipeline, node


        def double(x):
            return x * 2


        def create_pipeline(**kwargs):
            return Pipeline([node(double, "params:start", "doubled", name="double")])
    """,
    "data_science": """
        from kedro.pipeline import Pipeline, node


        def add_one(x):
            return x + 1


        def create_pipeline(**kwargs):
            return Pipeline([node(add_one, "doubled", "result", name="add_one")])
    """,
}


def new_project(root: Path) -> Path:
    """`kedro new` with the built-in template, which works offline."""
    subprocess.run(
        [
            str(BIN / "kedro"),
            "new",
            "--name",
            "Template Project",
            "--tools",
            "none",
            "--example",
            "n",
            "--telemetry",
            "no",
        ],
        cwd=root,
        check=True,
        capture_output=True,
    )
    return root / "template-project"


def copy_project(
    template: Path,
    root: Path,
    prefect_yml: str | None = "pipelines: all\n",
    name: str | None = None,
    hook: bool = True,
) -> Path:
    """A copy of `template` under a fresh package name, with the pipelines and (maybe) the hook."""
    suffix = uuid.uuid4().hex[:8]
    package = f"proj_{suffix}"
    project = root / package
    shutil.copytree(template, project)
    src = project / "src"
    (src / "template_project").rename(src / package)
    for path in [project / "pyproject.toml", *src.rglob("*.py")]:
        path.write_text(path.read_text().replace("template_project", package))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"Template Project"', f'"{name or "Proj " + suffix}"'))
    for pipeline, code in PIPELINES.items():
        folder = src / package / "pipelines" / pipeline
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa\n")
        (folder / "pipeline.py").write_text(textwrap.dedent(code))
    (project / "conf" / "base" / "parameters.yml").write_text("start: 3\n")
    if hook:
        with open(src / package / "settings.py", "a") as settings:
            settings.write(HOOK_SETTINGS)
    if prefect_yml is not None:
        (project / "conf" / "base" / "prefect.yml").write_text(textwrap.dedent(prefect_yml))
    return project


# Pipelines, catalog and a hook recorder for the flow-run tests.
FLOW_PIPELINES = {
    "failing": """
        from kedro.pipeline import Pipeline, node


        def ok(x):
            return x


        def boom(x):
            raise ValueError("boom: the input was " + repr(x))


        def create_pipeline(**kwargs):
            return Pipeline([
                node(ok, "params:start", "ok_out", name="ok"),
                node(boom, "ok_out", "boom_out", name="boom"),
                node(ok, "boom_out", "after_out", name="after"),
            ])
    """,
    "flaky": """
        from pathlib import Path

        from kedro.pipeline import Pipeline, node


        def fails_once(x):
            marker = Path("data") / "flaky-attempted"
            if not marker.exists():
                marker.write_text("1")
                raise RuntimeError("first attempt fails")
            return x


        def create_pipeline(**kwargs):
            return Pipeline([node(fails_once, "params:start", "flaky_out", name="fails_once", tags=["flaky"])])
    """,
    "sleepy": """
        import time

        from kedro.pipeline import Pipeline, node


        def nap(seconds):
            time.sleep(seconds)
            return seconds


        def create_pipeline(**kwargs):
            return Pipeline([
                node(nap, "params:nap", f"slept_{i}", name=f"nap_{i}") for i in range(4)
            ])
    """,
    "warning": """
        import warnings

        from kedro.pipeline import Pipeline, node


        def warn(x):
            warnings.warn("kph-test: this node warns about " + repr(x))
            return x


        def returns_without_outputs(x):
            return {"ignored": x}  # Kedro warns: a value returned by a node with outputs=None


        def create_pipeline(**kwargs):
            return Pipeline([
                node(warn, "params:start", "warned", name="warn"),
                node(returns_without_outputs, "warned", None, name="no_outputs"),
            ])
    """,
    "namespaced": """
        from kedro.pipeline import Pipeline, node, pipeline


        def inc(x):
            return x + 1


        def create_pipeline(**kwargs):
            base = Pipeline([node(inc, "x", "y", name="first"), node(inc, "y", "z", name="second")])
            return (
                Pipeline([node(inc, "params:start", "seed", name="seed")])
                + pipeline(base, namespace="alpha", inputs={"x": "seed"})
                + pipeline(base, namespace="beta", inputs={"x": "seed"})
            )
    """,
}

# Dask tests: independent nodes that say which process ran them, a chain through an
# in-memory dataset, and a branch that fails.
FLOW_PIPELINES["spread"] = """
    import os

    from kedro.pipeline import Pipeline, node


    def part(x, i):
        return {"pid": os.getpid(), "value": x * i}


    def halve(value):
        return value["value"] / 2


    def keep(value, pid_of):
        return {"pid": os.getpid(), "value": value, "pid_of_producer": pid_of["pid"]}


    def gather(*parts):
        return {"pids": sorted({p["pid"] for p in parts}), "total": sum(p["value"] for p in parts)}


    def create_pipeline(**kwargs):
        nodes = [node(part, ["params:start", f"params:factor_{i}"], f"spread_{i}", name=f"part_{i}") for i in range(4)]
        nodes += [
            node(halve, "spread_0", "halved", name="halve"),  # halved: in memory only
            node(keep, ["halved", "spread_0"], "kept", name="keep"),
            node(gather, [f"spread_{i}" for i in range(4)], "gathered", name="gather"),
        ]
        return Pipeline(nodes)
"""
FLOW_PIPELINES["spread_failing"] = """
    from kedro.pipeline import Pipeline, node


    def ok(x):
        return x


    def boom(x):
        raise ValueError("boom in a worker")


    def create_pipeline(**kwargs):
        return Pipeline([
            node(ok, "params:start", "spread_0", name="fine"),
            node(boom, "params:start", "spread_1", name="breaks"),
            node(ok, "spread_1", "spread_2", name="after_break"),
        ])
"""
FLOW_PIPELINES["resumable"] = """
    from pathlib import Path

    from kedro.pipeline import Pipeline, node


    def counted(x):
        with open(Path("data") / "resumable-upstream-calls", "a") as calls:
            calls.write("called\\n")
        return x * 10


    def in_memory(x):
        return x + 1


    def fails_first_time(persisted, remade):
        marker = Path("data") / "resumable-attempted"
        if not marker.exists():
            marker.write_text("1")
            raise RuntimeError("the first attempt fails here")
        return persisted + remade


    def create_pipeline(**kwargs):
        return Pipeline([
            node(counted, "params:start", "upstream", name="upstream_node"),
            node(in_memory, "params:start", "remade_in_memory", name="memory_node"),
            node(fails_first_time, ["upstream", "remade_in_memory"], "resumed_result", name="flaky_node"),
        ])
"""

FLOW_NODES = """
import logging

logger = logging.getLogger(__name__)


def double(x):
    logger.info("doubling %s", x)
    return x * 2
"""

FLOW_REGISTRY = """
from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines():
    # Since Kedro 1.5 find_pipelines loads only the pipelines a run asks for.
    pipelines = find_pipelines(raise_errors=True)
    default = [pipelines[name] for name in ("data_processing", "data_science") if name in pipelines]
    pipelines["__default__"] = sum(default, Pipeline([]))
    return pipelines
"""

FLOW_CATALOG = """
doubled:
  type: json.JSONDataset
  filepath: data/02_intermediate/doubled.json
  versioned: true
result:
  type: json.JSONDataset
  filepath: data/08_reporting/result.json
ok_out:
  type: json.JSONDataset
  filepath: data/02_intermediate/ok_out.json
"spread_{i}":
  type: json.JSONDataset
  filepath: data/07_model_output/spread_{i}.json
kept:
  type: json.JSONDataset
  filepath: data/07_model_output/kept.json
gathered:
  type: json.JSONDataset
  filepath: data/08_reporting/gathered.json
upstream:
  type: json.JSONDataset
  filepath: data/02_intermediate/upstream.json
  versioned: true
resumed_result:
  type: json.JSONDataset
  filepath: data/08_reporting/resumed_result.json
"""

HOOK_RECORDER = '''

import json as _json
import os as _os
from pathlib import Path as _Path

from kedro.framework.hooks import hook_impl as _hook_impl


def _run_id(run_params):
    # Kedro 1.3+ names it run_id; 1.0-1.2 session_id (the same value).
    return run_params.get("run_id") or run_params["session_id"]


class HookRecorder:
    """Writes every hook call of a flow run to data/hooks-<flow run id>.jsonl."""

    def _write(self, hook, **fields):
        run = _os.environ.get("PREFECT__FLOW_RUN_ID", "in-process")
        with open(_Path("data") / f"hooks-{run}.jsonl", "a") as out:
            out.write(_json.dumps({"hook": hook, **fields}) + "\\n")

    @_hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        self._write("before_pipeline_run", run_id=_run_id(run_params), env=run_params["env"])

    @_hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog):
        self._write("after_pipeline_run", run_id=_run_id(run_params))

    @_hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog):
        self._write("on_pipeline_error", error=str(error))

    @_hook_impl
    def before_node_run(self, node, catalog, inputs, is_async, run_id):
        self._write("before_node_run", node=node.name, run_id=run_id)

    @_hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async, run_id):
        self._write("after_node_run", node=node.name)

    @_hook_impl
    def on_node_error(self, error, node, catalog, inputs, is_async, run_id):
        self._write("on_node_error", node=node.name, error=str(error))

    @_hook_impl
    def after_dataset_saved(self, dataset_name, data, node):
        self._write("after_dataset_saved", dataset=dataset_name)


HOOKS = (*HOOKS, HookRecorder())
'''


def add_flow_pipelines(project: Path) -> Path:
    """Turns a copied project into the one the flow-run tests run: more pipelines, files, hooks."""
    package = next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    for pipeline, code in FLOW_PIPELINES.items():
        folder = package / "pipelines" / pipeline
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa\n")
        (folder / "pipeline.py").write_text(textwrap.dedent(code))
    processing = package / "pipelines" / "data_processing"
    (processing / "nodes.py").write_text(FLOW_NODES)
    code = (processing / "pipeline.py").read_text()
    (processing / "pipeline.py").write_text(
        code.replace("def double(x):\n    return x * 2\n", "from .nodes import double\n")
    )
    (project / "data").mkdir(exist_ok=True)
    (package / "pipeline_registry.py").write_text(FLOW_REGISTRY)
    (project / "conf" / "base" / "catalog.yml").write_text(FLOW_CATALOG)
    (project / "conf" / "base" / "parameters.yml").write_text(
        "start: 3\nnap: 0.5\n" + "".join(f"factor_{i}: {i + 1}\n" for i in range(4))
    )
    with open(package / "settings.py", "a") as settings:
        settings.write(HOOK_RECORDER)
    return project


def package_dir(project: Path) -> Path:
    """The project's package folder under src/."""
    return next(p for p in (project / "src").iterdir() if p.is_dir() and (p / "settings.py").exists())


def add_pipeline(project: Path, name: str, code: str, catalog: str = "", parameters: str = "") -> Path:
    """One more pipeline (found by the registry's find_pipelines), with its catalog entries and parameters."""
    folder = package_dir(project) / "pipelines" / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa\n")
    (folder / "pipeline.py").write_text(textwrap.dedent(code))
    for conf, text in (("catalog.yml", catalog), ("parameters.yml", parameters)):
        if text:
            with open(project / "conf" / "base" / conf, "a") as out:
                out.write("\n" + textwrap.dedent(text))
    (project / "data").mkdir(exist_ok=True)
    return project
