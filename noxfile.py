"""Lint, types, docs and the version matrix; `./scripts/test` is the way in.

    nox -s lint types tests-default docs     what `./scripts/test` runs
    nox -s tests-oldest tests-newest         the matrix ends (`./scripts/test --matrix`)

The matrix legs are the promises setup.cfg makes:
- tests-oldest:  Python 3.10, every declared floor (kedro 1.0, prefect 3.8.7, ...),
                 resolved by uv with `--resolution lowest-direct`.
- tests-newest:  Python 3.13, the newest releases the declared ranges allow,
                 installed from the sdist and tested from inside it.
- tests-default: the Python that runs nox, with what `pip install` picks today: the
                 same kedro and prefect as tests-newest, so `--matrix` (CI) runs the two
                 ends instead of it.
Each suite runs in 2 pytest-xdist processes (KPH_TEST_WORKERS; `--matrix` legs: 1), each with its own server.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
# uv installs no bytecode, and with PYTHONDONTWRITEBYTECODE set (as on this machine) no process
# ever caches it: each one then compiled every module it imported, prefect's 1500 among them
# (2.6 s of CPU for `import prefect` instead of 1.1 s), in each of the suite's flow runs, workers,
# servers and kedro commands. pip compiles at install; with this, uv does too.
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
nox.options.download_python = "never"  # no interpreter downloads: the matrix says what is missing
nox.options.sessions = ["lint", "types", "tests-default", "tests-mlflow", "docs"]

ROOT = Path(__file__).parent
LINTED = ["kedro_prefect_hooks", "tests", "benchmarks", "docs/hooks.py", "noxfile.py"]
TEST_ENV = {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "NO_MKDOCS_2_WARNING": "1"}


def interpreter(version: str) -> str:
    """An absolute path to Python `version` from pyenv or PATH, else the bare version.

    nox does not look in pyenv, and pyenv's shims only run the global version. A bare
    version makes nox report "Python interpreter 3.10 not found" for that leg (an
    error with --error-on-missing-interpreters, as in .ci/run).
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(str(pyenv_root / "versions" / f"{version}.*" / "bin" / f"python{version}")))
    if candidates:
        return candidates[-1]
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    print(
        f"noxfile: Python {version} not found in {pyenv_root}/versions or on PATH; "
        f"its matrix leg cannot run (e.g. `pyenv install {version}`).",
        file=sys.stderr,
    )
    return version


def show_versions(session: nox.Session, *extra: str) -> None:
    """One line with what this leg really runs, for the matrix table."""
    session.run(
        "python",
        "-c",
        "import sys, importlib.metadata as m; "
        "print('versions: python', sys.version.split()[0], *(f'{p} {m.version(p)}' for p in "
        f"('kedro', 'prefect', 'prefect-dask', 'pydantic', 'sqlalchemy', 'fastapi', *{list(extra)!r})), sep=' | ')",
    )


def test_workers(posargs: list[str]) -> list[str]:
    """pytest-xdist options: 2 test processes, each with its own server and worker (the suite
    mostly waits on them; `./scripts/test --matrix` runs two legs at once, 1 each). KPH_TEST_WORKERS=0, or a
    `-n`/`-p no:xdist` of one's own, runs them as given."""
    workers = os.environ.get("KPH_TEST_WORKERS", "2")
    if workers == "0" or any(
        arg.startswith(("-n", "--numprocesses")) or arg == "no:xdist" for arg in posargs
    ):
        return []
    return ["-n", workers, "--dist", "loadgroup", "--durations=15"]


def run_tests(session: nox.Session, cwd: Path = ROOT, databases: str = "sqlite,postgresql") -> None:
    """The suite; `databases`: which servers the shared-server tests run against (tests/conftest.py)."""
    show_versions(session)
    with session.chdir(cwd):
        session.run(
            "python",
            "-m",
            "pytest",
            *test_workers(session.posargs),
            *session.posargs,
            env={**TEST_ENV, "KPH_TEST_DATABASES": databases},
        )


@nox.session(name="tests-default")
def tests_default(session: nox.Session) -> None:
    """The suite on what `pip install kedro-prefect-hooks` resolves today."""
    session.install("-e", ".[test]")
    run_tests(session)


@nox.session(name="tests-mlflow")
def tests_mlflow(session: nox.Session) -> None:
    """kedro-mlflow alongside: its own environment, since with kedro-mlflow installed every
    project needs an mlflow.yml (the other tests' projects have none)."""
    session.install("-e", ".[test]", "kedro-mlflow")
    show_versions(session, "kedro-mlflow", "mlflow")
    # `./scripts/test -k faults` selects nothing here: pytest's "no tests collected" (5) is no failure then
    success = [0, 5] if session.posargs else [0]
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/test_mlflow.py",
        *session.posargs,
        env=TEST_ENV,
        success_codes=success,
    )


@nox.session(name="tests-oldest", python=interpreter("3.10"))
def tests_oldest(session: nox.Session) -> None:
    """Every declared floor: the package's own requirements at their lowest, then the test tools around them."""
    session.install("--resolution", "lowest-direct", "-e", ".[server,dask]")
    pins = Path(session.create_tmp()) / "floors.txt"
    python = str(Path(session.virtualenv.location) / "bin" / "python")
    freeze = [sys.executable, "-m", "uv", "pip", "freeze", "--exclude-editable", "--python", python]
    frozen = session.run(*freeze, silent=True, external=True) or ""
    pins.write_text("\n".join(line for line in frozen.splitlines() if "==" in line))
    session.install("-c", str(pins), "-e", ".[test]")
    run_tests(session, databases="sqlite")  # PostgreSQL: in tests-newest, the versions teams run


@nox.session(name="tests-newest", python=interpreter("3.13"))
def tests_newest(session: nox.Session) -> None:
    """The newest releases allowed, installed from the sdist, tested from inside the unpacked sdist."""
    tmp = Path(session.create_tmp())
    shutil.rmtree(tmp / "dist", ignore_errors=True)
    session.install("build")
    session.run("python", "-m", "build", "--sdist", "--outdir", str(tmp / "dist"), silent=True)
    (sdist,) = (tmp / "dist").glob("*.tar.gz")
    unpacked = tmp / "sdist"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    session.install(f"{sdist}[test]")
    run_tests(session, cwd=source)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session
def types(session: nox.Session) -> None:
    # tomli: mypy reads the Python 3.10 branch of compat.py too
    session.install("-e", ".[dask]", "mypy==2.4.1", "types-PyYAML", "types-python-dateutil", "tomli")
    session.run("mypy", "kedro_prefect_hooks")


@nox.session
def docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--quiet", "--site-dir", "build/site", env=TEST_ENV)
