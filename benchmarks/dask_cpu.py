"""CPU-bound nodes: Dask worker processes against one process, side by side in one run, real server.

8 independent nodes that each burn 1 s of CPU (a busy loop on thread time, not a
sleep), run by our flow called in-process with:
  - task_runner: sequential (one process, one node at a time);
  - task_runner: threads (one process: the GIL lets one node compute at a time);
  - task_runner: dask, on an existing cluster: a scheduler and two single-threaded
    worker processes started once, before the measured runs (what production has);
  - task_runner: dask with a temporary local cluster of 2 processes, started and
    stopped inside each run (what a laptop gets with no address configured);
  - bare Prefect: a flow submitting 8 tasks doing the same burn to the same existing
    cluster through prefect-dask, no Kedro: what Prefect and Dask cost on their own.
Each burn records its worker's pid, and the placement (tasks per worker) is printed.
Variants are interleaved, `--repeat` times after one untimed pass that warms the
imports (long-lived workers have them); medians are printed with their ratio to
sequential. Every time includes what a flow run pays: the Kedro session, and for
Dask, rebuilding Kedro in each worker process once per run.

Run: .nox/tests-newest/bin/python benchmarks/dask_cpu.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import itertools
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
import os
import time


def burn(seconds, i):
    began, start = time.time(), time.thread_time()
    spins = 0
    while time.thread_time() - start < seconds:
        spins += 1
    with open(os.environ["BURN_PIDS"], "a") as pids:
        pids.write(f"{os.getpid()} {began} {time.time()}\\n")
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
BARE = "bare Prefect tasks, same existing cluster"


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

    times: dict[str, list[float]] = {name: [] for name in [*VARIANTS, BARE]}
    placements: dict[str, list[str]] = {name: [] for name in times}
    burns: dict[str, list[float]] = {name: [] for name in times}  # wall time of each 1 s burn
    gaps: dict[str, list[float]] = {name: [] for name in times}  # a process's idle time between burns
    prefect_yml = project / "conf" / "base" / "prefect.yml"
    pids = Path(os.environ["BURN_PIDS"])
    bare = bare_flow(address)
    with temporary_settings({PREFECT_API_URL: api_url}):
        for attempt in range(repeat + 1):  # the first pass warms imports here and in the cluster's workers
            for name in times:
                pids.write_text("")
                start = time.perf_counter()
                if name == BARE:
                    state = bare(return_state=True)
                else:
                    prefect_yml.write_text(
                        f"defaults:\n  run: {{{VARIANTS[name].format(address=address)}}}\n"
                    )
                    state = kedro_pipeline(pipeline="burn", return_state=True)
                if attempt:
                    times[name].append(time.perf_counter() - start)
                    placement, burn_times, idle = read_burns(pids)
                    placements[name].append(placement)
                    burns[name] += burn_times
                    gaps[name] += idle
                assert state.is_completed(), state.message
                time.sleep(2)  # the server stores the run's logs and events, untimed
    out.write_text(json.dumps({"times": times, "placements": placements, "burns": burns, "gaps": gaps}))


def read_burns(pids: Path) -> tuple[str, list[float], list[float]]:
    """One run's burns: tasks per process ("4/4"), each burn's wall time, each process's gaps."""
    by_pid: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for line in pids.read_text().splitlines():
        pid, began, ended = line.split()
        by_pid[pid].append((float(began), float(ended)))
    spans = [sorted(found) for found in by_pid.values()]
    placement = "/".join(str(len(found)) for found in sorted(spans, key=len, reverse=True))
    walls = [end - start for found in spans for start, end in found]
    idle = [  # threads overlap in one process: no gap to speak of
        later[0] - earlier[1]
        for found in spans
        for earlier, later in itertools.pairwise(found)
        if later[0] >= earlier[1]
    ]
    return placement, walls, idle


def bare_flow(address: str):
    """8 Prefect tasks doing the nodes' burn on the cluster, with no Kedro (the burn travels by value)."""
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner

    namespace: dict = {}
    exec(BURN, namespace)  # the function the nodes run, defined here so that cloudpickle sends it whole
    burn = task(namespace["burn"])

    @flow(task_runner=DaskTaskRunner(address=address))
    def bare_burn():
        futures = [burn.submit(SECONDS, i) for i in range(NODES)]
        return [future.result() for future in futures]

    return bare_burn


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
        os.environ["BURN_PIDS"] = env["BURN_PIDS"] = str(root / "burn-pids")  # the cluster's workers too
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
        measured = json.loads(out.read_text())
    times, placements = measured["times"], measured["placements"]
    burns, gaps = measured["burns"], measured["gaps"]
    base = statistics.median(times["sequential"])
    print(f"{NODES} nodes x {SECONDS:g} s of CPU, {os.cpu_count()} cores, medians of {args.repeat}:")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:45s} {median:6.2f} s   ratio to sequential {median / base:.2f}   "
            f"(all: {', '.join(f'{v:.2f}' for v in values)}; tasks per process: {' '.join(placements[name])})"
        )
        waited = (
            f"; a process waited {statistics.median(gaps[name]):.2f} s between two burns"
            if gaps[name]
            else ""
        )
        print(
            f"  {'':45s} a 1 s burn took {statistics.median(burns[name]):.2f} s of wall time{waited} (medians)"
        )
    ours = statistics.median(times["dask, existing cluster (2 processes)"])
    print(f"  ours / bare Prefect on the same cluster: {ours / statistics.median(times[BARE]):.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        measure(Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), Path(sys.argv[6]))
    else:
        main()
