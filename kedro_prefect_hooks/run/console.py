"""The console during a flow run: Kedro's warnings and errors, as plain lines.

Inside a flow run the console is the worker's log file, not a terminal. Kedro's three
INFO lines a node (loading, running, saving) are in the run's logs in Prefect, where a
user reads a run; in the worker's log they drowned its own lines and cost a third of
the plugin's per-node time (rich rendering under a lock at first, then the writes
alone: benchmarks/flow_runs.py). So for the run the root logger's rich console
handlers become plain ones that print warnings and errors: the worker's log still
shows what went wrong, and every line still reaches Prefect.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

PLAIN = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextmanager
def plain_console() -> Iterator[None]:
    """For the run, the root logger's rich console handlers become plain WARNING-level ones."""
    root = logging.getLogger()
    swapped: list[tuple[logging.Handler, logging.Handler]] = []
    for handler in list(root.handlers):
        if type(handler).__name__ != "RichHandler":
            continue
        console = getattr(handler, "console", None)
        stream = getattr(console, "file", None)
        plain = logging.StreamHandler(stream)
        plain.setLevel(max(handler.level, logging.WARNING))
        plain.setFormatter(PLAIN)
        for kept in handler.filters:
            plain.addFilter(kept)
        root.removeHandler(handler)
        root.addHandler(plain)
        swapped.append((handler, plain))
    try:
        yield
    finally:
        for rich, stand_in in swapped:
            root.removeHandler(stand_in)
            root.addHandler(rich)
