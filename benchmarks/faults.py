"""What a misbehaving Prefect API adds to a Kedro command, side by side in one run.

A small `kedro run` with the hook (`on_error: warn`, `timeout: 2`), against:
a real server with the deployments current; a port that refuses connections; one
that accepts and never answers; an HTML login page; `{}`; a server that sends its
headers, or its body, one byte a second; a bad PREFECT_API_URL; an API key over
plain http to another host; a proxy in front of the real server that makes every
answer take 1.5 s (a first registration of 5 pipelines, then an unchanged session),
or that answers 503 to every deployment write. And the same run in a copy of the
project without the hook. Medians of `--repeat` interleaved runs, printed as added
seconds, with the warning line the user sees.

`--cases` instead replays each case of issue 19 once, as a user would meet it, and
prints the exit code, how many lines the user reads (the error of a failed command, or
the plugin's warnings), their first line, and the seconds added. Run it with
PYTHONPATH=<a checkout of another version> to compare versions (see benchmarks/cases.py).

Run: .venv/bin/python benchmarks/faults.py [--repeat 3] [--cases]
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
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cases import five_pipelines, replay  # noqa: E402

from kedro_prefect_hooks.local.server import free_port, start_server, stop_server  # noqa: E402

from fake_servers import empty_object, login_page, proxy, serve, trickling  # noqa: E402
from kedro_projects import BIN, copy_project, new_project  # noqa: E402


def kedro_run(project: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([str(BIN / "kedro"), "run"], cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"kedro run failed in {project}:\n{result.stderr[-3000:]}")
    warning = next((line for line in result.stdout.splitlines() if "kedro-prefect-hooks:" in line), "")
    return elapsed, warning.split("kedro-prefect-hooks:", 1)[-1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", action="store_true", help="replay issue 19's cases once each")
    args = parser.parse_args()
    if args.cases:
        replay()
        return
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": "400"}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        env["PREFECT_HOME"] = str(root / "client-home")
        server, api_url = start_server(root / "server-home")
        stack.callback(stop_server, server)
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        stack.callback(silent.close)
        template = new_project(root)
        with_hook = copy_project(template, root, "pipelines: all\ntimeout: 2\n")
        without_hook = copy_project(template, root, prefect_yml=None, hook=False)
        slow_url, _ = stack.enter_context(proxy(api_url, lambda *_: 1.5))
        burst_url, _ = stack.enter_context(
            proxy(api_url, lambda m, p, b: (503, "busy") if (m, p) == ("POST", "/deployments/") else None)
        )
        fresh = [
            five_pipelines(copy_project(template, root, "pipelines: all\ntimeout: 2\n"))
            for _ in range(2 * args.repeat)
        ]
        conditions = {
            "without the hook": (without_hook, {"PREFECT_API_URL": api_url}),
            "deployments current": (with_hook, {"PREFECT_API_URL": api_url}),
            "API down (refused)": (with_hook, {"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}),
            "API accepts, never answers": (
                with_hook,
                {"PREFECT_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/api"},
            ),
            "HTML login page": (with_hook, {"PREFECT_API_URL": stack.enter_context(serve(login_page))}),
            "answers {}": (with_hook, {"PREFECT_API_URL": stack.enter_context(serve(empty_object))}),
            "headers at 1 byte/s": (
                with_hook,
                {"PREFECT_API_URL": stack.enter_context(trickling("headers"))},
            ),
            "body at 1 byte/s": (with_hook, {"PREFECT_API_URL": stack.enter_context(trickling("body"))}),
            "bad URL (http://[::1/api)": (with_hook, {"PREFECT_API_URL": "http://[::1/api"}),
            "API key over http to another host": (
                with_hook,
                {"PREFECT_API_URL": "http://prefect.example.com/api", "PREFECT_API_KEY": "pnu_x"},
            ),
            "1.5 s answers, first registration of 5": (fresh, {"PREFECT_API_URL": slow_url}),
            "1.5 s answers, nothing changed": (with_hook, {"PREFECT_API_URL": slow_url}),
            "503 to every deployment write": (fresh, {"PREFECT_API_URL": burst_url}),
        }
        kedro_run(with_hook, {**env, "PREFECT_API_URL": api_url})  # registers once
        times: dict[str, list[float]] = {name: [] for name in conditions}
        seen: dict[str, str] = {}
        for _ in range(args.repeat):
            for name, (where, extra) in conditions.items():
                project = where.pop() if isinstance(where, list) else where  # a first registration each time
                elapsed, warning = kedro_run(project, {**env, **extra})
                times[name].append(elapsed)
                seen[name] = warning
    base = statistics.median(times["without the hook"])
    print(
        f"`kedro run` with `timeout: 2`, medians of {args.repeat}; added seconds against no hook ({base:.2f} s):"
    )
    for name, values in times.items():
        print(f"  {name:36s} +{statistics.median(values) - base:5.2f} s   {seen[name][:150]}")


if __name__ == "__main__":
    main()
