"""`kedro prefect run beta --wait` against plain `kedro run --pipelines beta`, side by side.

The issue's first figure: a project with a two-node pipeline `beta` (trivial nodes), its
own local server (`kedro prefect server start`) and the flag-started worker already up
(`worker: {start: true}`, every other setting its default). Interleaved, `--repeat` times
each, it times the two commands and, for each triggered run, where its time went, read
from the run's own states: trigger -> the worker took it (PENDING) -> the flow started
(RUNNING) -> it ended -> the command returned. Medians with min/max, the ratio as headline.

Run: .venv/bin/python benchmarks/cli_run.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cases import kedro  # noqa: E402

from kedro_prefect_hooks.local.server import local_server_url  # noqa: E402

from kedro_projects import add_pipeline, copy_project, new_project  # noqa: E402
from prefect_runs import call_api  # noqa: E402

BETA = """
from kedro.pipeline import Pipeline, node


def first(x):
    return x + 1


def second(x):
    return x * 2


def create_pipeline(**kwargs):
    return Pipeline([node(first, "params:start", "b1", name="first"), node(second, "b1", "b2", name="second")])
"""


def timed(project: Path, *args: str) -> float:
    """Seconds `kedro <args>` took; a failure stops the benchmark with its output."""
    result, took = kedro(project, *args, env={"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"})
    if result.returncode != 0:
        raise SystemExit(f"`kedro {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}")
    return took


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def phases(api_url: str, returned_at: float) -> dict[str, float]:
    """The newest flow run's states, as seconds between them."""
    [run] = call_api(
        "POST", f"{api_url}/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}
    ).json()
    states = call_api("GET", f"{api_url}/flow_run_states/?flow_run_id={run['id']}").json()
    at = {
        state["type"]: seconds(state["timestamp"]) for state in sorted(states, key=lambda s: s["timestamp"])
    }
    created = seconds(run["created"])
    return {
        "trigger -> worker took it": at["PENDING"] - created,
        "worker -> flow running": at["RUNNING"] - at["PENDING"],
        "flow running -> ended": at["COMPLETED"] - at["RUNNING"],
        "ended -> command returned": returned_at - at["COMPLETED"],
    }


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        template = new_project(root)
        project = copy_project(template, root / "p", "pipelines: [beta]\nworker: {start: true}\n")
        add_pipeline(project, "beta", BETA)
        timed(project, "prefect", "server", "start")
        try:
            timed(project, "run", "--pipeline", "beta")  # registers, starts the worker
            api_url = local_server_url(project)
            assert api_url, "the project's local server is not running"
            timed(project, "prefect", "run", "beta", "--wait")  # the first run pays what later ones do not
            plain, ours, parts = [], [], []
            for _ in range(args.repeat):
                plain.append(timed(project, "run", "--pipeline", "beta"))
                ours.append(timed(project, "prefect", "run", "beta", "--wait"))
                parts.append(phases(api_url, time.time()))
        finally:
            kedro(project, "prefect", "worker", "stop")
            kedro(project, "prefect", "server", "stop")
    print(f"kedro run --pipeline beta               {spread(plain)}")
    print(f"kedro prefect run beta --wait           {spread(ours)}")
    for name in parts[0]:
        print(f"  {name:<37}{spread([p[name] for p in parts])}")
    print(f"ratio (medians): {statistics.median(ours) / statistics.median(plain):.2f}x   goal <= 2.0x")


if __name__ == "__main__":
    main()
