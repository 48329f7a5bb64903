"""What running a pipeline as a Prefect flow costs, side by side in one run against a real server.

For a 200-node chain and a 100-node fan-out (one source, 99 branches), each
node passing a small value on:
  - plain Kedro: `KedroSession.run` in-process with its default SequentialRunner
    (and ThreadRunner for the fan-out);
  - our flow (`kedro_prefect_hooks.flow.kedro_pipeline`) called in-process, with the
    default `task_runner: sequential` and with `threads`;
  - bare Prefect: a flow of @task functions doing the same work with the same
    dependencies: direct calls (as sequential), or `submit` to a thread pool of the
    same size for the fan-out (as threads).
Then 8 independent nodes that each sleep 1 s, our flow with threads vs sequential;
and a 100-node chain whose every output is a JSON file (persisted, so an asset), our
flow with asset events (the default) and with `run: {assets: false}`, to show what the
events add per node.

Variants are interleaved; each time includes sending the run's logs and events
to the server (a worker's flow process does that before it exits). The server runs on
a core of its own (CPU affinity, when the machine has two or more), the measured
process on the others, and the next variant starts only once the server is quiet
again (it used under 10 % of a core for half a second): a backlog of one variant's
events no longer lands on the next one's time. Medians are printed as ms per node
and as ratios, with the spread (min-max).
The measured runs happen in a child process whose console output is discarded
(Kedro and Prefect print a few lines per node), so the terminal does not skew them.

Flow run heartbeats are turned off for every variant: Prefect 3.9 sends them by
default, and its heartbeat thread sleeps in whole seconds, which the flow run waits
for when it ends. That adds 0 to 1 s to every flow run, ours or bare, and rounds
every time up to the next second, hiding the per-node cost this compares. The chain
is also measured with heartbeats on, to show what they add.

Kedro's default logging renders 3 rich console lines per node under a lock, which
threads contend for; `--plain-logging` runs everything with Kedro's plain
`default_logging.yml` instead (KEDRO_LOGGING_CONFIG), to show that share.

Run: .venv/bin/python benchmarks/flow_runs.py [--repeat 5] [--plain-logging]
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

CHAIN, FANOUT, SLEEPERS, MAX_WORKERS, PERSISTED = 200, 100, 8, 8, 100

NODES = """
import time


def passthrough(x):
    return x


def nap(seconds):
    time.sleep(seconds)
    return seconds
"""

REGISTRY = f"""
from kedro.pipeline import Pipeline, node

from .bench_nodes import nap, passthrough


def register_pipelines():
    chain = [node(passthrough, "params:start", "c0", name="c0")]
    chain += [node(passthrough, f"c{{i - 1}}", f"c{{i}}", name=f"c{{i}}") for i in range(1, {CHAIN})]
    fanout = [node(passthrough, "params:start", "source", name="source")]
    fanout += [node(passthrough, "source", f"f{{i}}", name=f"f{{i}}") for i in range(1, {FANOUT})]
    sleepers = [node(nap, "params:nap", f"s{{i}}", name=f"s{{i}}") for i in range({SLEEPERS})]
    persisted = [node(passthrough, "params:start", "p0", name="p0")]
    persisted += [node(passthrough, f"p{{i - 1}}", f"p{{i}}", name=f"p{{i}}") for i in range(1, {PERSISTED})]
    return {{
        "__default__": Pipeline(chain),
        "chain": Pipeline(chain),
        "fanout": Pipeline(fanout),
        "fanout_threads": Pipeline(fanout),
        "sleepers": Pipeline(sleepers),
        "sleepers_sequential": Pipeline(sleepers),
        "persisted": Pipeline(persisted),
        "persisted_no_assets": Pipeline(persisted),
    }}
"""

PREFECT_YML = f"""
defaults:
  run: {{max_workers: {MAX_WORKERS}}}
deployments:
  fanout_threads:
    run: {{task_runner: threads}}
  sleepers:
    run: {{task_runner: threads}}
  persisted_no_assets:
    run: {{assets: false}}
"""

# Every output of the persisted chain is a file.
CATALOG = """
"p{i}":
  type: json.JSONDataset
  filepath: data/persisted/p{i}.json
"""


def make_project(root: Path) -> Path:
    from kedro_projects import copy_project, new_project

    project = copy_project(new_project(root), root, PREFECT_YML, hook=False)
    package = next(p for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    (package / "bench_nodes.py").write_text(NODES)
    (package / "pipeline_registry.py").write_text(textwrap.dedent(REGISTRY))
    (project / "conf" / "base" / "parameters.yml").write_text("start: 3\nnap: 1\n")
    (project / "conf" / "base" / "catalog.yml").write_text(CATALOG)
    return project


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_until_quiet(pid: int, window: float = 0.5, share: float = 0.1, longest: float = 60) -> None:
    """Until process `pid` (the server) used under `share` of a core for `window` seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        before = cpu_ticks(pid)
        time.sleep(window)
        if (cpu_ticks(pid) - before) / tick < share * window:
            return


def isolate(server_pid: int) -> None:
    """The server on the last core, this process (and what it starts) on the others."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:
        os.sched_setaffinity(server_pid, {cores[-1]})
        os.sched_setaffinity(0, set(cores[:-1]))


def measure(project: Path, api_url: str, server_pid: int, repeat: int, out: Path) -> None:
    """The child process: every variant, interleaved, timings written to `out`."""
    os.chdir(project)
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.runner import ThreadRunner
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.events.worker import EventsWorker
    from prefect.futures import wait
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.task_runners import ThreadPoolTaskRunner

    from kedro_prefect_hooks.flow import kedro_pipeline

    bootstrap_project(project)

    @task(cache_policy=NO_CACHE, persist_result=False)
    def passthrough(x):
        return x

    def with_heartbeats(run):
        def run_with_heartbeats():
            with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}):  # Prefect 3.9's default
                run()

        return run_with_heartbeats

    @flow
    def bare_chain():
        # Direct calls, the cheapest way to chain Prefect tasks (submitting each
        # with the previous future measured 2.7x slower: threads wait on each other).
        value = 3
        for _ in range(CHAIN):
            value = passthrough(value)

    @flow
    def bare_fanout():
        source = passthrough(3)
        for _ in range(1, FANOUT):
            passthrough(source)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=MAX_WORKERS))
    def bare_fanout_threads():
        source = passthrough.submit(3)
        wait([passthrough.submit(source) for _ in range(1, FANOUT)])

    def plain_kedro(pipeline, runner=None):
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=[pipeline], runner=runner)

    def ours(pipeline):
        state = kedro_pipeline(pipeline=pipeline, return_state=True)
        assert state.is_completed(), state.message

    variants = {
        "chain: plain kedro": lambda: plain_kedro("chain"),
        "chain: our flow": lambda: ours("chain"),
        "chain: bare prefect": bare_chain,
        "fanout: plain kedro": lambda: plain_kedro("fanout"),
        "fanout: our flow": lambda: ours("fanout"),
        "fanout: bare prefect": bare_fanout,
        "fanout threads: plain kedro": lambda: plain_kedro("fanout", ThreadRunner(max_workers=MAX_WORKERS)),
        "fanout threads: our flow": lambda: ours("fanout_threads"),
        "fanout threads: bare prefect": bare_fanout_threads,
        "8 x 1 s sleep: our flow, threads": lambda: ours("sleepers"),
        "8 x 1 s sleep: our flow, sequential": lambda: ours("sleepers_sequential"),
        "persisted chain: plain kedro": lambda: plain_kedro("persisted"),
        "persisted chain: our flow, asset events": lambda: ours("persisted"),
        "persisted chain: our flow, assets: false": lambda: ours("persisted_no_assets"),
        "chain, heartbeats on: our flow": with_heartbeats(lambda: ours("chain")),
        "chain, heartbeats on: bare prefect": with_heartbeats(bare_chain),
    }

    def run_and_ship(run) -> float:
        """Seconds for a run plus sending its logs and events, as a worker's flow process does before exiting."""
        wait_until_quiet(server_pid)  # untimed: the server stored what the last variant sent
        start = time.perf_counter()
        run()
        APILogWorker.drain_all(timeout=60)
        EventsWorker.drain_all(timeout=60)
        return time.perf_counter() - start

    timings: dict[str, list[float]] = {name: [] for name in variants}
    with temporary_settings({PREFECT_API_URL: api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        for name, run in variants.items():  # warm-up: imports, first flow registration
            if "sleep" not in name:
                run_and_ship(run)
        for _ in range(repeat):
            for name, run in variants.items():
                timings[name].append(run_and_ship(run))
    out.write_text(json.dumps(timings))


def report(timings: dict[str, list[float]]) -> None:
    median = {name: statistics.median(values) for name, values in timings.items()}
    for shape, nodes in (("chain", CHAIN), ("fanout", FANOUT), ("fanout threads", FANOUT)):
        print(f"\n{shape} ({nodes} nodes), median (min-max) of {len(timings[f'{shape}: our flow'])} runs:")
        for who in ("plain kedro", "our flow", "bare prefect"):
            if f"{shape}: {who}" not in median:
                continue
            seconds, samples = median[f"{shape}: {who}"], timings[f"{shape}: {who}"]
            spread = f"({min(samples):5.2f}-{max(samples):5.2f})"
            print(f"  {who:19s} {seconds:7.2f} s {spread}  {1000 * seconds / nodes:6.2f} ms/node")
        ours, bare = median[f"{shape}: our flow"], median[f"{shape}: bare prefect"]
        print(f"  our flow / bare prefect = {ours / bare:.2f}   (target <= 1.10)")
        print(f"  our flow / plain kedro  = {ours / median[f'{shape}: plain kedro']:.1f}")
        # Kedro's own per-node work (hooks, catalog, its log lines) is in our flow and not in
        # the bare tasks; subtract it, measured with the same kind of runner.
        kedro_same = median[f"{shape}: plain kedro"]
        print(f"  (our flow - plain kedro) / bare prefect = {(ours - kedro_same) / bare:.2f}")
    threads = timings["8 x 1 s sleep: our flow, threads"]
    sequential = timings["8 x 1 s sleep: our flow, sequential"]
    ratios = [t / s for t, s in zip(threads, sequential, strict=True)]  # round by round
    print(
        f"\n8 independent nodes sleeping 1 s: threads {statistics.median(threads):.2f} s, sequential "
        f"{statistics.median(sequential):.2f} s, ratio {statistics.median(ratios):.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f} by round)   (target <= 0.2)"
    )
    with_events = median["persisted chain: our flow, asset events"]
    without = median["persisted chain: our flow, assets: false"]
    added = 1000 * (with_events - without) / PERSISTED
    bare_per_node = 1000 * median["chain: bare prefect"] / CHAIN
    print(
        f"\n{PERSISTED}-node chain of JSON files: plain kedro {median['persisted chain: plain kedro']:.2f} s, "
        f"our flow {with_events:.2f} s with asset events, {without:.2f} s without: the events add "
        f"{added:.2f} ms/node, {added / bare_per_node:.2f} of bare Prefect's {bare_per_node:.2f} ms/node"
    )
    ours_on, bare_on = median["chain, heartbeats on: our flow"], median["chain, heartbeats on: bare prefect"]
    print(
        f"\nchain with Prefect's default heartbeats (off above): our flow {ours_on:.2f} s, "
        f"bare prefect {bare_on:.2f} s, ratio {ours_on / bare_on:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant (default 5)")
    parser.add_argument("--plain-logging", action="store_true", help="Kedro's plain logging config, not rich")
    parser.add_argument(
        "--child", nargs=4, metavar=("PROJECT", "API_URL", "PID", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        project, api_url, server_pid, out = args.child
        measure(Path(project), api_url, int(server_pid), args.repeat, Path(out))
        return

    from kedro_prefect_hooks.local.server import start_server, stop_server

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "PREFECT_HOME": str(root / "client-home"),
        }
        if args.plain_logging:
            import kedro.framework.project

            plain = Path(kedro.framework.project.__file__).parent / "default_logging.yml"
            env["KEDRO_LOGGING_CONFIG"] = str(plain)
        os.environ.update(env)
        server, api_url = start_server(root / "server-home")
        isolate(server.pid)
        try:
            project = make_project(root)
            out = root / "timings.json"
            print(f"measuring ({args.repeat} rounds; a few minutes)...", flush=True)
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--repeat",
                    str(args.repeat),
                    "--child",
                    str(project),
                    api_url,
                    str(server.pid),
                    str(out),
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            report(json.loads(out.read_text()))
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
