"""CPU-bound nodes: Dask worker processes against one process, side by side in one run, real server.

8 independent nodes that each burn 1 s of CPU (a busy loop on thread time, not a
sleep), run by our flow called in-process with:
  - task_runner: sequential (one process, one node at a time);
  - task_runner: threads (one process: the GIL lets one node compute at a time);
  - task_runner: dask, on an existing cluster: a scheduler and two single-threaded
    worker processes started once, before the measured runs (what production has);
  - task_runner: dask with a temporary local cluster of 2 processes, started and
    stopped inside each run (what a laptop gets with no address configured).
Variants are interleaved, `--repeat` times after one untimed pass that warms the
imports (long-lived workers have them); medians are printed with their ratio to
sequential. Every time includes what a flow run pays: the Kedro session, and for
Dask, rebuilding Kedro in each worker process once per run.

Run: .venv/bin/python benchmarks/dask_cpu.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from dask_cluster import external_cluster  # noqa: E402

NODES, SECONDS = 8, 1.0

BURN = """
import time


def burn(seconds, i):
    start = time.thread_time()
    spins = 0
    while time.thread_time() - start < seconds:
        spins += 1
    return spins
"""

REGISTRY = f"""
from kedro.pipeline import Pipeline, node

from .burn import burn


def register_pipelines():
    nodes = [node(burn, ["params:seconds", f"params:i{{i}}"], f"b{{i}}", name=f"b{{i}}") for i in range({NODES})]
    return {{"__default__": Pipeline(nodes), "burn": Pipeline(nodes)}}
"""

VARIANTS = {
    "sequential": "task_runner: sequential",
    "threads": f"task_runner: threads, max_workers: {NODES}",
    "dask, existing cluster (2 processes)": "task_runner: dask, dask: {{address: '{address}'}}",
    "dask, temporary local cluster (2 processes)": "task_runner: dask, dask: {{n_workers: 2, threads_per_worker: 1}}",
}


def make_project(root: Path) -> Path:
    from kedro_projects import copy_project, new_project

    project = copy_project(new_project(root), root, "pipelines: all\n", hook=False)
    package = next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    (package / "burn.py").write_text(BURN)
    (package / "pipeline_registry.py").write_text(textwrap.dedent(REGISTRY))
    (project / "conf" / "base" / "parameters.yml").write_text(
        f"seconds: {SECONDS}\n" + "".join(f"i{i}: {i}\n" for i in range(NODES))
    )
    return project


def measure(project: Path, api_url: str, address: str, repeat: int, out: Path) -> None:
    """The child process: every variant, interleaved; timings written to `out`."""
    os.chdir(project)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from kedro_prefect_hooks.flow import kedro_pipeline

    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    prefect_yml = project / "conf" / "base" / "prefect.yml"
    with temporary_settings({PREFECT_API_URL: api_url}):
        for attempt in range(repeat + 1):  # the first pass warms imports here and in the cluster's workers
            for name, run in VARIANTS.items():
                prefect_yml.write_text(f"defaults:\n  run: {{{run.format(address=address)}}}\n")
                start = time.perf_counter()
                state = kedro_pipeline(pipeline="burn", return_state=True)
                if attempt:
                    times[name].append(time.perf_counter() - start)
                assert state.is_completed(), state.message
                time.sleep(2)  # the server stores the run's logs and events, untimed
    out.write_text(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from kedro_prefect_hooks.local.server import start_server, stop_server

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        project = make_project(root)
        server, api_url = start_server(root / "server-home")
        stack.callback(stop_server, server)
        workdir = root / "dask"
        workdir.mkdir()
        address, _ = stack.enter_context(external_cluster(workdir))
        out = root / "times.json"
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(project), api_url, address, str(args.repeat), str(out)],
            env={**env, "PREFECT_API_URL": api_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if child.returncode:
            raise SystemExit(f"the measuring process failed:\n{child.stderr[-3000:]}")
        times = json.loads(out.read_text())
    base = statistics.median(times["sequential"])
    print(f"{NODES} nodes x {SECONDS:g} s of CPU, {os.cpu_count()} cores, medians of {args.repeat}:")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:45s} {median:6.2f} s   ratio to sequential {median / base:.2f}   (all: {', '.join(f'{v:.2f}' for v in values)})"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        measure(Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), Path(sys.argv[6]))
    else:
        main()
