"""Session start on a project whose pipeline modules are slow to import, hook on vs off, side by side.

Real projects import scikit-learn, plotly or matplotlib in their pipeline modules:
seconds at each import. The benchmark project has one light pipeline and three
whose modules each take 1 s to import (a sleep at import time, so the figure does
not depend on what else the machine computes). With the deployments already
current (nothing changed), it times, interleaved, `--repeat` times each:
  - `kedro run --pipeline light` (Kedro >= 1.5 imports only that pipeline's module);
  - `kedro catalog describe-datasets` (imports no pipeline at all);
  - the same run right after a heavy pipeline's module was edited (the pipeline cache is
    stale: the hook leaves the registry's load to a background `kedro prefect register`,
    which each round waits for, untimed);
with the hook enabled and in a copy of the project without it, against a real
local server, and prints the medians and their ratio.

Run: .venv/bin/python benchmarks/session_start.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from kedro_prefect_hooks.local.registrar import last_run  # noqa: E402
from kedro_prefect_hooks.local.server import start_server, stop_server  # noqa: E402

from kedro_projects import BIN, copy_project, new_project  # noqa: E402

LIGHT = """
from kedro.pipeline import Pipeline, node


def double(x):
    return x * 2


def create_pipeline(**kwargs):
    return Pipeline([node(double, "params:start", "doubled", name="double")])
"""

HEAVY = """
import time

time.sleep(1)  # what importing scikit-learn or plotting libraries costs


from kedro.pipeline import Pipeline, node


def triple(x):
    return x * 3


def create_pipeline(**kwargs):
    return Pipeline([node(triple, "params:start", "tripled_{name}", name="triple_{name}")])
"""

COMMANDS = {
    "kedro run --pipeline light": ["run", "--pipeline", "light"],
    "kedro catalog describe-datasets": ["catalog", "describe-datasets"],
    "the same run, after a node edit": ["run", "--pipeline", "light"],
}
AFTER_AN_EDIT = "the same run, after a node edit"  # a heavy pipeline's module is touched before it


def make_project(template: Path, root: Path, hook: bool) -> Path:
    project = copy_project(template, root, "pipelines: all\n" if hook else None, hook=hook)
    package = next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    for name, code in [
        ("light", LIGHT),
        *((f"heavy_{i}", HEAVY.replace("{name}", str(i))) for i in range(3)),
    ]:
        folder = package / "pipelines" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa\n")
        (folder / "pipeline.py").write_text(textwrap.dedent(code))
    return project


def timed(project: Path, args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([str(BIN / "kedro"), *args], cwd=project, env=env, capture_output=True)
    if result.returncode:
        sys.exit(f"kedro {' '.join(args)} failed in {project}:\n{result.stderr.decode()[-3000:]}")
    return time.perf_counter() - start


def edit_a_node(project: Path, count: int) -> None:
    """What a user's edit does to the cache: a pipeline module's size and mtime change."""
    module = next(project.glob("src/proj_*/pipelines/heavy_0/pipeline.py"))
    module.write_text(module.read_text() + f"# edit {count}\n")


def background_registration_ended(project: Path) -> None:
    """Not timed: the next measurement should not share the CPU with the last one's registrar."""
    while (run := last_run(project)) is not None and run.state == "running":
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env["PREFECT_HOME"] = str(root / "client-home")
        server, api_url = start_server(root / "server-home")
        env["PREFECT_API_URL"] = api_url
        try:
            template = new_project(root)
            projects = {
                "hook": make_project(template, root, True),
                "no hook": make_project(template, root, False),
            }
            for project in projects.values():  # registers once, and warms every cache
                for command in COMMANDS.values():
                    timed(project, command, env)
            times: dict[tuple[str, str], list[float]] = {(c, h): [] for c in COMMANDS for h in projects}
            for round_ in range(args.repeat):
                for command, command_args in COMMANDS.items():
                    for hook, project in projects.items():
                        if command == AFTER_AN_EDIT:
                            edit_a_node(project, round_)
                        times[command, hook].append(timed(project, command_args, env))
                        background_registration_ended(project)
        finally:
            stop_server(server)
    print(f"session start, 3 pipeline modules taking 1 s each to import, medians of {args.repeat} (min-max):")
    for command in COMMANDS:
        on, off = (times[command, h] for h in ("hook", "no hook"))
        ratio = statistics.median(on) / statistics.median(off)
        print(f"  {command:34s} hook {spread(on)}, without {spread(off)}, ratio {ratio:.2f}")


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} s ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
