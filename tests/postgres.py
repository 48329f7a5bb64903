"""A throwaway PostgreSQL cluster on 127.0.0.1, for a Prefect server on the database teams run.

Debian's `postgresql` package puts initdb and pg_ctl in /usr/lib/postgresql/<version>/bin
(not on PATH). PostgreSQL refuses to run as root: as root, the cluster runs as the
`postgres` system user through `runuser`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "install PostgreSQL (`apt-get install postgresql` on Debian/Ubuntu)"


class PostgresUnavailable(RuntimeError):
    """What is missing to start a cluster here, with the fix."""


def binaries() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's newest versioned folder."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    folders = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(Path(f).parent.name.split(".")[0])
    )
    for folder in reversed(folders):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise PostgresUnavailable(f"no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin: {INSTALL_HINT}")


def _as_cluster_user() -> list[str]:
    """The prefix that runs a command as a user PostgreSQL accepts: itself, or `postgres` for root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and `runuser` (util-linux) is missing to start PostgreSQL")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no `postgres` system user to run PostgreSQL: {INSTALL_HINT}"
        ) from None
    return [runuser, "-u", "postgres", "--"]


@dataclass
class Cluster:
    folder: Path
    port: int
    bin: Path
    prefix: list[str]

    @property
    def url(self) -> str:
        """What Prefect's PREFECT_API_DATABASE_CONNECTION_URL takes (asyncpg driver)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            [
                *self.prefix,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster(port: int) -> Cluster:
    """initdb into a fresh folder under /tmp and start it on 127.0.0.1:`port` (trust auth, no fsync)."""
    folder_bin = binaries()
    prefix = _as_cluster_user()
    folder = Path(tempfile.mkdtemp(prefix="kph-postgres-"))
    if prefix:
        shutil.chown(folder, user="postgres")
    cluster = Cluster(folder, port, folder_bin, prefix)
    data = folder / "data"
    steps = [
        [
            str(folder_bin / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        [
            str(folder_bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "postgres.log"),
            "-w",
            "-o",
            f"-p {port} -h 127.0.0.1 -k {folder} -F -c max_connections=200",
            "start",
        ],
    ]
    for step in steps:
        done = subprocess.run([*prefix, *step], capture_output=True, text=True, timeout=120)
        if done.returncode:
            log = (folder / "postgres.log").read_text()[-2000:] if (folder / "postgres.log").exists() else ""
            cluster.stop()
            raise PostgresUnavailable(f"`{' '.join(step[:1])}` failed: {done.stdout}{done.stderr}{log}")
    return cluster
