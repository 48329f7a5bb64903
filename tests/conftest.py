"""Shared fixtures: one real Prefect server per test session, real `kedro new` projects."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

from kedro_prefect_hooks.local.server import free_port, start_server, stop_server

from kedro_projects import BIN, copy_project, new_project
from prefect_runs import call_api

os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
os.environ["DO_NOT_TRACK"] = "1"


@pytest.fixture(scope="session", autouse=True)
def isolated_prefect_home(tmp_path_factory):
    """No test reads the user's ~/.prefect profiles."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("PREFECT_API_KEY", None)
    os.environ.pop("PREFECT_API_AUTH_STRING", None)
    os.environ.pop("PREFECT_PROFILE", None)
    return home


# A queued run (deployment concurrency limit) is retried after this many seconds
# instead of Prefect's 30, so tests of one-run-at-a-time do not idle.
TEST_SERVER_SETTINGS = {"PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"}
AUTH_STRING = "admin:s3cret"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory, isolated_prefect_home):
    """`prefect server start` on a free 127.0.0.1 port with SQLite, once per test session."""
    process, url = start_server(tmp_path_factory.mktemp("server-home"), settings=TEST_SERVER_SETTINGS)
    warm_up(url)
    yield url
    if "prefect.logging.handlers" in sys.modules:  # in-process flow runs: send their last logs
        sys.modules["prefect.logging.handlers"].APILogWorker.drain_all(timeout=5)
    stop_server(process)


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory, isolated_prefect_home):
    """A second real server that asks for basic auth (PREFECT_SERVER_API_AUTH_STRING); its URL has none."""
    settings = {**TEST_SERVER_SETTINGS, "PREFECT_SERVER_API_AUTH_STRING": AUTH_STRING}
    process, url = start_server(tmp_path_factory.mktemp("auth-server-home"), settings=settings)
    warm_up(url, auth=tuple(AUTH_STRING.split(":", 1)))
    yield url
    stop_server(process)


def warm_up(url: str, auth: tuple[str, ...] | None = None) -> None:
    """The requests a registering session makes, once, before any test: a just-started server
    answers its first of each kind slowly (over 2 s on a loaded CI machine, more than a
    session's `timeout:`), which made tests that are not about a slow server fail."""
    flow_id = call_api("POST", f"{url}/flows/", json={"name": "warm-up"}, auth=auth).json()["id"]
    deployment = call_api(
        "POST", f"{url}/deployments/", json={"name": "warm-up", "flow_id": flow_id}, auth=auth
    )
    for kind in ("deployments", "work_pools", "variables", "automations", "flow_runs"):
        call_api("POST", f"{url}/{kind}/filter", json={"limit": 1}, auth=auth)
    call_api("GET", f"{url}/variables/name/warm-up", check=False, auth=auth)
    call_api("DELETE", f"{url}/deployments/{deployment.json()['id']}", auth=auth)


@pytest.fixture
def api_url(prefect_server, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    return prefect_server


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory, isolated_prefect_home):
    """A real server on PostgreSQL, the database a team's shared server runs on, once per session.

    The cluster is made and removed here (initdb, pg_ctl on a free 127.0.0.1 port). Without
    PostgreSQL the tests that use it fail, naming the install: they are never skipped.
    """
    from postgres import PostgresUnavailable, start_cluster

    try:
        cluster = start_cluster(free_port())
    except PostgresUnavailable as exc:
        pytest.fail(f"the PostgreSQL variant of the shared-server tests cannot run: {exc}", pytrace=False)
    try:
        settings = {**TEST_SERVER_SETTINGS, "PREFECT_API_DATABASE_CONNECTION_URL": cluster.url}
        process, url = start_server(tmp_path_factory.mktemp("postgres-server-home"), settings=settings)
        warm_up(url)
    except BaseException:
        cluster.stop()
        raise
    yield url
    stop_server(process)
    cluster.stop()


# The version matrix runs the PostgreSQL variants in one leg only (noxfile.py sets
# KPH_TEST_DATABASES=sqlite for the other); `./scripts/test` runs both.
DATABASES = os.environ.get("KPH_TEST_DATABASES", "sqlite,postgresql").split(",")


@pytest.fixture(scope="session", params=DATABASES)
def shared_database(request):
    """The shared-server tests run on both databases: the suite's SQLite server, and PostgreSQL."""
    return request.param


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`--dist loadgroup`), the PostgreSQL variants share one test process,
    so one cluster and one server serve them all."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("shared_database") == "postgresql":
            item.add_marker(pytest.mark.xdist_group("postgresql"))


@pytest.fixture(scope="session")
def shared_server(shared_database, request):
    return request.getfixturevalue("prefect_server" if shared_database == "sqlite" else "postgres_server")


@pytest.fixture
def shared_api_url(shared_server, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", shared_server)
    return shared_server


@pytest.fixture(scope="session")
def shared_worker(shared_database, shared_server, request, tmp_path_factory):
    """A process worker for the `kedro` pool of `shared_server` (the suite's own on SQLite)."""
    if shared_database == "sqlite":
        yield request.getfixturevalue("process_worker")
        return
    log = tmp_path_factory.mktemp("postgres-worker") / "worker.log"
    process = start_process_worker(shared_server, "kedro", log)
    yield log
    stop_process(process)


@pytest.fixture(scope="session")
def project_template(tmp_path_factory):
    return new_project(tmp_path_factory.mktemp("template"))


@pytest.fixture
def make_project(project_template, tmp_path):
    """A copy of the template under a fresh package name: tests never share modules or deployments."""

    def make(prefect_yml: str | None = "pipelines: all\n", name: str | None = None) -> Path:
        return copy_project(project_template, tmp_path, prefect_yml, name)

    return make


def open_session(project: Path, env: str | None = None) -> None:
    """What every Kedro command does first: bootstrap, create a session, load the context."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    session = KedroSession.create(project_path=project, env=env)
    try:
        session.load_context()
    finally:
        session.close()


def background_registration(project: Path, timeout: float = 120):
    """The background registration a session started, once it ended (see local/registrar.py)."""
    from kedro_prefect_hooks.local.registrar import last_run

    deadline = time.monotonic() + timeout
    while (found := last_run(project)) is not None and found.state == "running":
        assert time.monotonic() < deadline, f"the background registration still runs after {timeout} s"
        time.sleep(0.3)
    assert found is not None, "no background registration was started"
    return found


@pytest.fixture
def hook_log():
    """Records of the plugin's loggers; Kedro's logging setup leaves named loggers alone."""

    class Records(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record):
            self.records.append(record)

        def messages(self, level=logging.WARNING):
            return [r.getMessage() for r in self.records if r.levelno >= level]

    handler = Records()
    logger = logging.getLogger("kedro_prefect_hooks")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def project_deployments(api_url: str, project: Path) -> list[dict]:
    """The project's deployments on the server, each with its flow's name as `flow_name`."""
    package = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["kedro"]["package_name"]
    found = call_api(
        "POST",
        f"{api_url}/deployments/filter",
        json={"deployments": {"tags": {"all_": [f"kedro-project:{package}"]}}},
    ).json()
    for deployment in found:
        deployment["flow_name"] = call_api("GET", f"{api_url}/flows/{deployment['flow_id']}").json()["name"]
    return sorted(found, key=lambda d: d["name"])


def invoke(project: Path, *args: str):
    """`kedro prefect <args>` in this process, through click's runner (stdout is not a terminal)."""
    from click.testing import CliRunner
    from kedro.framework.startup import bootstrap_project

    from kedro_prefect_hooks.cli import commands

    metadata = bootstrap_project(project)
    return CliRunner().invoke(commands, ["prefect", *args], obj=metadata, catch_exceptions=False)


def kedro(project: Path, *args: str, env: dict | None = None, timeout: float = 120):
    """Runs a real `kedro` command in the project."""
    return subprocess.run(
        [str(BIN / "kedro"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_process_worker(api_url: str, pool: str, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """A plain `prefect worker start` for `pool`, polling every second; `cwd`: where it starts."""
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def process_worker(prefect_server, tmp_path_factory):
    """A real `prefect worker start` for the `kedro` pool, polling every second."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = start_process_worker(prefect_server, "kedro", log)
    yield log
    stop_process(process)


@pytest.fixture
def run_flow(api_url, make_project, monkeypatch):
    """Runs a pipeline of a fresh flow-test project in this process, as a worker's flow run would;
    returns (project, state, task runs by name)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from kedro_projects import add_flow_pipelines
    from prefect_runs import task_runs

    def run(prefect_yml: str, pipeline: str, conf: dict[str, str] | None = None, setup=None, **parameters):
        """`conf`: more config files, by path under conf/ (e.g. another env's prefect.yml);
        `setup`: called with the project before the run (e.g. to add a pipeline)."""
        project = add_flow_pipelines(make_project(prefect_yml))
        if setup is not None:
            setup(project)
        for name, text in (conf or {}).items():
            (project / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
            (project / "conf" / name).write_text(text)
        monkeypatch.chdir(project)
        from kedro_prefect_hooks.flow import kedro_pipeline

        with temporary_settings({PREFECT_API_URL: api_url}):
            state = kedro_pipeline(pipeline=pipeline, return_state=True, **parameters)
        return project, state, task_runs(api_url, str(state.state_details.flow_run_id))

    return run
