"""An external Dask cluster for tests and benchmarks: `dask scheduler` and single-threaded `dask worker`s."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kedro_prefect_hooks.local.server import free_port

BIN = Path(sys.executable).parent


@contextmanager
def external_cluster(workdir: Path, workers: int = 2) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """(scheduler address, worker processes), started in `workdir` (logs there), stopped after."""
    port = free_port()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    names = ["scheduler", *(f"worker-{i}" for i in range(workers))]
    logs = [open(workdir / f"{name}.log", "w") for name in names]  # noqa: SIM115  (closed in finally)
    processes = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            cwd=workdir,
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        time.sleep(3)
        processes += [
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "worker",
                    f"tcp://127.0.0.1:{port}",
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs[1:]
        ]
        time.sleep(5)
        yield f"tcp://127.0.0.1:{port}", processes[1:]
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        for log in logs:
            log.close()
