"""Shared fixtures: one real Prefect server per test session, real `kedro new` projects."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent
os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
os.environ["DO_NOT_TRACK"] = "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_prefect_home(tmp_path_factory):
    """No test reads the user's ~/.prefect profiles."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("PREFECT_API_KEY", None)
    os.environ.pop("PREFECT_PROFILE", None)
    return home


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory, isolated_prefect_home):
    """`prefect server start` on a free 127.0.0.1 port with SQLite; its API URL."""
    port = free_port()
    home = tmp_path_factory.mktemp("server-home")
    log = open(home / "server.log", "w")
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        process.kill()
        raise RuntimeError("prefect server did not come up in 120 s")
    yield url
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def api_url(prefect_server, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    return prefect_server


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


@pytest.fixture(scope="session")
def project_template(tmp_path_factory):
    """A `kedro new` project (offline template) with two pipelines and the hook enabled."""
    root = tmp_path_factory.mktemp("template")
    subprocess.run(
        [str(BIN / "kedro"), "new", "--name", "Template Project", "--tools", "none",
         "--example", "n", "--telemetry", "no"],
        cwd=root, check=True, capture_output=True,
    )
    return root / "template-project"


@pytest.fixture
def make_project(project_template, tmp_path):
    """Copies the template under a fresh package name, so tests never share modules or deployments."""

    def make(prefect_yml: str | None = "pipelines: all\n", name: str | None = None) -> Path:
        suffix = uuid.uuid4().hex[:8]
        package = f"proj_{suffix}"
        project = tmp_path / package
        shutil.copytree(project_template, project)
        src = project / "src"
        (src / "template_project").rename(src / package)
        for path in [project / "pyproject.toml", *src.rglob("*.py")]:
            path.write_text(path.read_text().replace("template_project", package))
        pyproject = project / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace('"Template Project"', f'"{name or "Proj " + suffix}"')
        )
        for pipeline, code in PIPELINES.items():
            folder = src / package / "pipelines" / pipeline
            folder.mkdir(parents=True)
            (folder / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa\n")
            (folder / "pipeline.py").write_text(textwrap.dedent(code))
        (project / "conf" / "base" / "parameters.yml").write_text("start: 3\n")
        with open(src / package / "settings.py", "a") as settings:
            settings.write("\nfrom kedro_prefect_hooks import PrefectHook\n\nHOOKS = (PrefectHook(),)\n")
        if prefect_yml is not None:
            (project / "conf" / "base" / "prefect.yml").write_text(textwrap.dedent(prefect_yml))
        return project

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
    package = next(p.name for p in (project / "src").iterdir() if p.name.startswith("proj_"))
    with httpx.Client(base_url=api_url, timeout=10) as client:
        found = client.post(
            "/deployments/filter",
            json={"deployments": {"tags": {"all_": [f"kedro-project:{package}"]}}},
        ).json()
        for deployment in found:
            deployment["flow_name"] = client.get(f"/flows/{deployment['flow_id']}").json()["name"]
    return sorted(found, key=lambda d: d["name"])


def kedro(project: Path, *args: str, env: dict | None = None, timeout: float = 120):
    """Runs a real `kedro` command in the project."""
    return subprocess.run(
        [str(BIN / "kedro"), *args],
        cwd=project, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
