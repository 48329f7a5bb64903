"""What the hook costs, measured side by side in one run against a real local Prefect server.

1. A small `kedro run` with the hook (deployments already current) against the same
   run without the hook, interleaved, medians and their ratio. Also with the API down
   (connection refused) and silent (accepts, never answers; default 2 s timeout).
2. Registering 50 pipelines, `--repeat` rounds: first time (on a new work pool, which
   imports prefect for the process pool's template), again when nothing changed, then when
   one pipeline's options changed (only that deployment is written), each in a fresh
   process as a Kedro command would; medians and min-max.
Heavy pipeline imports at session start: benchmarks/session_start.py.

Run: .venv/bin/python benchmarks/registration.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from kedro_prefect_hooks.local.server import free_port, start_server, stop_server  # noqa: E402

from kedro_projects import BIN, copy_project, new_project  # noqa: E402

REGISTER_50 = """
import sys, time
from pathlib import Path
t0 = time.perf_counter()
from kedro_prefect_hooks.prefect_api.settings import resolve_api
from kedro_prefect_hooks.config import parse_config
from kedro_prefect_hooks.project import KedroProject
from kedro_prefect_hooks.registration.apply import register
names = [f"pipeline_{i:02d}" for i in range(50)]
tag = sys.argv[2]  # each round registers its own 50 deployments on its own (new) work pool
project = KedroProject(name=f"Bench {tag}", package=f"bench_{tag}", path=Path.cwd(), env=None, run_env="local")
t1 = time.perf_counter()
raw = {"pipelines": names, "work_pool": {"name": f"bench-{tag}"}, "defaults": {"schedule": {"cron": "0 6 * * *"}}}
if sys.argv[1] == "one changed":
    raw["deployments"] = {"pipeline_07": {"tags": ["changed"]}}
config = parse_config(raw)
outcome = register(config, project, config.selected_pipelines(names), resolve_api(None))
t2 = time.perf_counter()
print(f"{t2 - t1:.3f} {t1 - t0:.3f} {len(outcome.written)} {len(outcome.unchanged)}")
"""


def kedro_run(project: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([str(BIN / "kedro"), "run"], cwd=project, env=env, capture_output=True)
    if result.returncode:
        sys.exit(f"kedro run failed in {project}:\n{result.stderr.decode()[-3000:]}")
    return time.perf_counter() - start


def register_fifty(root: Path, env: dict[str, str], label: str, tag: str) -> tuple[float, float, str]:
    """(seconds in register(), seconds importing the plugin, what was written) of one fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", REGISTER_50, label, tag], cwd=root, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"registering 50 pipelines failed:\n{result.stderr[-3000:]}")
    took, imports, written, unchanged = result.stdout.strip().splitlines()[-1].split()
    return float(took), float(imports), f"written {written}, unchanged {unchanged}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per variant (default 7)")
    args = parser.parse_args()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env["PREFECT_HOME"] = str(root / "client-home")
        server, api_url = start_server(root / "server-home")
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        try:
            template = new_project(root)
            with_hook = copy_project(template, root)
            without_hook = copy_project(template, root, prefect_yml=None, hook=False)
            variants = {
                "without hook": (without_hook, api_url),
                "hook, deployments current": (with_hook, api_url),
                "hook, API down (refused)": (with_hook, f"http://127.0.0.1:{free_port()}/api"),
                "hook, API silent (2 s timeout)": (
                    with_hook,
                    f"http://127.0.0.1:{silent.getsockname()[1]}/api",
                ),
            }
            kedro_run(with_hook, {**env, "PREFECT_API_URL": api_url})  # registers once; warms caches
            kedro_run(without_hook, env)
            times: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.repeat):  # interleaved, so machine noise hits every variant alike
                for name, (project, url) in variants.items():
                    times[name].append(kedro_run(project, {**env, "PREFECT_API_URL": url}))

            base = statistics.median(times["without hook"])
            print(f"small `kedro run`, median of {args.repeat} interleaved runs:")
            for name, samples in times.items():
                median = statistics.median(samples)
                spread = f"({min(samples):.2f}-{max(samples):.2f})"
                print(f"  {name:32s} {median:6.2f} s {spread}   ratio {median / base:5.2f}")

            register_env = {**env, "PREFECT_API_URL": api_url}
            labels = ("first time", "nothing changed", "one changed")
            found: dict[str, list[tuple[float, float, str]]] = {label: [] for label in labels}
            for round_ in range(args.repeat):  # a round: 50 new deployments, then the same twice
                for label in labels:
                    found[label].append(register_fifty(root, register_env, label, f"r{round_}"))
            print(
                f"register 50 pipelines, each in a fresh process, {args.repeat} rounds "
                "(register() call, median (min-max); plugin import apart):"
            )
            for label, samples in found.items():
                took = [t for t, _, _ in samples]
                imports = statistics.median(i for _, i, _ in samples)
                print(
                    f"  {label:32s} {statistics.median(took):6.2f} s ({min(took):.2f}-{max(took):.2f})"
                    f"   (+{imports:.2f} s plugin import)   {samples[-1][2]}"
                )
        finally:
            silent.close()
            stop_server(server)


if __name__ == "__main__":
    main()
