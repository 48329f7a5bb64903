"""Issue 19's cases, replayed once each as a user meets them: `benchmarks/faults.py --cases`.

Each case makes a fresh project (`kedro new`, offline), runs the commands of the report
against a real local server (a proxy in front of it for the 503 and slow cases) and
prints: the exit code of the last command, how many lines the user reads about the
plugin (the error of a failed command, else the plugin's log records, as printed at
COLUMNS=100), the first of them, and the seconds the last command took beyond the same
`kedro run` without the hook. PYTHONPATH=<another checkout> replays them on that version.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from kedro_prefect_hooks.local.server import free_port, start_server, stop_server

from fake_servers import proxy
from kedro_projects import BIN, copy_project, new_project

COLUMNS = "100"
RICH_PREFIX = 29  # "[12/01/26 20:29:03] WARNING  ": a log record's time and level columns


def five_pipelines(project: Path) -> Path:
    """The project with five registered pipelines (the issue's first registration of 5)."""
    pipelines = next((project / "src").iterdir()) / "pipelines"
    for extra in ("reporting", "features"):
        shutil.copytree(pipelines / "data_science", pipelines / extra)
    return project


def kedro(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "kedro"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # a build that signals its own process group hits only itself
        timeout=300,
    )
    return result, time.perf_counter() - started


LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def plugin_lines(result: subprocess.CompletedProcess) -> list[str]:
    """What the user reads: a failed command's error output; else the plugin's log records and
    the command's own lines (not Kedro's log records)."""
    if result.returncode:
        return [line for line in result.stderr.splitlines() if line.strip()]
    lines, inside = [], False
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        record = line.startswith("[") or line[20:RICH_PREFIX].strip() in LEVELS
        if record:
            inside = "kedro-prefect-hooks:" in line
        elif line[:RICH_PREFIX].strip():  # neither a record nor its continuation: the command's output
            inside = True
        if inside:
            lines.append(line)
    return lines


def replay() -> None:
    env = {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": COLUMNS}
    os.environ.update(env)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        os.environ["PREFECT_HOME"] = str(root / "client-home")
        server, api = start_server(root / "server-home")
        stack.callback(stop_server, server)
        os.environ["PREFECT_API_URL"] = api
        template = new_project(root)
        bare = copy_project(template, root, prefect_yml=None, hook=False)
        base = statistics.median(kedro(bare, "run")[1] for _ in range(3))

        def fresh(prefect_yml: str = "pipelines: all\n") -> Path:
            return copy_project(template, root, prefect_yml)

        print(f"`kedro run` without the hook: {base:.2f} s; lines at COLUMNS={COLUMNS}")
        print(f"{'case':58s} rc lines  added  first line")
        for name, case in cases(fresh, api, stack).items():
            result, seconds = case()
            lines = plugin_lines(result)
            first = next((line.split("kedro-prefect-hooks:", 1)[-1].strip() for line in lines), "")
            added = f"{seconds - base:+6.2f}" if result.returncode == 0 else "   n/a"  # a failure ends early
            print(f"{name:58s} {result.returncode:2d} {len(lines):5d} {added}  {first[:150]}")


def cases(fresh: Callable[..., Path], api: str, stack: ExitStack) -> dict[str, Callable]:
    slow, _ = stack.enter_context(proxy(api, lambda *_: 1.5))
    busy = {"on": True}
    burst, _ = stack.enter_context(
        proxy(
            api, lambda m, p, b: (503, "busy") if busy["on"] and (m, p) == ("POST", "/deployments/") else None
        )
    )

    def release():
        project = fresh(
            f"pipelines: [data_science]\nsource: {{git: {{url: 'https://x.example/p.git', commit: '{'1' * 40}'}}}}\n"
        )
        kedro(project, "run")
        conf = project / "conf" / "base" / "prefect.yml"
        conf.write_text(conf.read_text().replace("1" * 40, "2" * 40))
        return kedro(project, "run")

    def capitals():
        project = fresh()
        (project / "conf" / "Prod").mkdir()
        kedro(project, "run", "-e", "Prod")
        return kedro(project, "run", "-e", "Prod")

    def burst_then_healthy():
        busy["on"] = True
        project = fresh()
        kedro(project, "run", env={"PREFECT_API_URL": burst})
        busy["on"] = False
        return kedro(project, "run", env={"PREFECT_API_URL": burst})

    posts: list[bytes] = []

    def stall_third(method: str, path: str, body: bytes) -> object:
        if (method, path) == ("POST", "/deployments/"):
            posts.append(body)
            return 30 if len(posts) == 3 else None
        return None

    stalled, _ = stack.enter_context(proxy(api, stall_third))

    def partial():
        posts.clear()
        return kedro(fresh("pipelines: all\ntimeout: 1\n"), "run", env={"PREFECT_API_URL": stalled})

    def cache():
        project = fresh()
        package = next((project / "src").iterdir())
        (package / "pipeline_registry.py").write_text(REGISTRY)
        (project / "conf" / "base" / "extra.yml").write_text("[extra_a]\n")
        kedro(project, "run")
        (project / "conf" / "base" / "extra.yml").write_text("[extra_b]\n")
        result, seconds = kedro(project, "run")
        listed, _ = kedro(project, "prefect", "list")
        about = "\n".join(line for line in listed.stdout.splitlines() if "extra_b" in line)
        return subprocess.CompletedProcess(
            result.args, result.returncode, about or "(extra_b not listed)", ""
        ), seconds

    def corrupt(name: str, content: str, *command: str):
        def run():
            project = fresh("pipelines: [data_science]\n")
            (project / ".kedro-prefect").mkdir()
            (project / ".kedro-prefect" / name).write_text(content)
            return kedro(project, *(command or ("run",)))

        return run

    def broken(text: str, *command: str):
        return lambda: kedro(fresh(text), *(command or ("run",)))

    def long_pool():
        project = fresh(
            f"pipelines: [data_science]\nwork_pool: {{name: {'p' * 250}}}\nworker: {{start: true}}\n"
        )
        outcome = kedro(project, "run")
        kedro(project, "prefect", "worker", "stop")
        return outcome

    def slow_first():
        return kedro(
            five_pipelines(fresh("pipelines: all\ntimeout: 2\n")), "run", env={"PREFECT_API_URL": slow}
        )

    def slow_unchanged():
        project = fresh("pipelines: all\ntimeout: 2\n")
        kedro(project, "run")
        return kedro(project, "run", env={"PREFECT_API_URL": slow})

    def burst_only():
        busy["on"] = True
        return kedro(
            five_pipelines(fresh("pipelines: all\ntimeout: 2\n")), "run", env={"PREFECT_API_URL": burst}
        )

    down = f"http://127.0.0.1:{free_port()}/api"
    return {
        "1 a new git commit (release)": release,
        "2 kedro run -e Prod, second session": capitals,
        "3 503 burst, then the next (healthy) session": burst_then_healthy,
        "4 registry reads conf/ (extra_a -> extra_b): `list` says": cache,
        "5 the third deployment write never answers (timeout 1)": partial,
        "6 flow-schema.json is []": corrupt("flow-schema.json", "[]"),
        "6 pipelines.json is null, kedro prefect register": corrupt(
            "pipelines.json", "null", "prefect", "register"
        ),
        "6 refused.json entry is a string": corrupt("refused.json", f'{{"{api}": "x"}}'),
        "6 worker record pid 'abc', worker status": corrupt(
            "worker-kedro.json", '{"pid": "abc", "marker": "m", "log": "l"}', "prefect", "worker", "status"
        ),
        "6 server record pid 0, server stop": corrupt(
            "server.json", '{"pid": 0, "marker": "m", "log": "l"}', "prefect", "server", "stop"
        ),
        "7 every answer 1.5 s, first registration": slow_first,
        "7 every answer 1.5 s, nothing changed": slow_unchanged,
        "7 503 to every deployment write": burst_only,
        "8 YAML syntax error, kedro run": broken("pipelines: [p_a, p_b\n"),
        "8 YAML syntax error, kedro prefect register": broken(
            "pipelines: [p_a, p_b\n", "prefect", "register"
        ),
        "8 prefect.yml is a list": broken("- a\n- b\n"),
        "8 duplicate key": broken("pipelines: all\npipelines: all\n"),
        "8 unresolved ${oc.env:...}": broken("api_url: ${oc.env:NOPE_VAR}\n"),
        "8 on_error: raise, API down": broken(f"pipelines: all\non_error: raise\napi_url: {down}\n"),
        "9 work_pool.name of 250 characters, worker.start": long_pool,
        "11 token in a git URL's query string": broken(
            "pipelines: all\nsource: {git: {url: 'https://git.example.com/a/p.git?private_token=glpat-x'}}\n"
        ),
        "s timezone posixrules": broken("defaults: {schedule: {cron: '0 6 * * *', timezone: posixrules}}\n"),
        "s register -e nope": broken("pipelines: all\n", "prefect", "register", "-e", "nope"),
        "s api_url without /api": broken(f"pipelines: all\napi_url: {api.removesuffix('/api')}\n"),
        "s a git source with a typo (union error)": broken(
            "pipelines: all\nsource: {git: {url: 'https://x.example/p.git', branhc: main}}\n"
        ),
        "s interval .nan": broken("defaults: {schedule: {interval: .nan}}\n"),
        "s retries 1e12": broken("defaults: {run: {retries: 1e12}}\n"),
    }


REGISTRY = """
from pathlib import Path

import yaml
from kedro.pipeline import Pipeline, node

from .pipelines.data_processing import create_pipeline as processing
from .pipelines.data_science import create_pipeline as science


def register_pipelines():
    pipelines = {"data_processing": processing(), "data_science": science()}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    for name in yaml.safe_load(Path("conf/base/extra.yml").read_text()):
        pipelines[name] = Pipeline([node(lambda x: x, "params:start", f"{name}_out", name=f"{name}_node")])
    return pipelines
"""
