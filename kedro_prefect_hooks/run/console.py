"""The console during a flow run: plain lines instead of rich ones.

Inside a flow run the console is the worker's log file, not a terminal: rich's
layout (columns, wrapping, colours) makes it harder to read there, and rendering
it cost about 80 % of Kedro's own per-node work (3 lines a node, under a lock),
measured with benchmarks/flow_runs.py. The lines themselves stay: the run's logs in
Prefect get every one of them, and the console gets them as plain text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

PLAIN = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextmanager
def plain_console() -> Iterator[None]:
    """For the run, the root logger's rich console handlers become plain stream handlers."""
    root = logging.getLogger()
    swapped: list[tuple[logging.Handler, logging.Handler]] = []
    for handler in list(root.handlers):
        if type(handler).__name__ != "RichHandler":
            continue
        console = getattr(handler, "console", None)
        stream = getattr(console, "file", None)
        plain = logging.StreamHandler(stream)
        plain.setLevel(handler.level)
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
