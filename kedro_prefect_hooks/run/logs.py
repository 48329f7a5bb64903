"""Send Kedro's log lines to the Prefect run, as PREFECT_LOGGING_EXTRA_LOGGERS would, without it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.logging.handlers import APILogHandler


@contextmanager
def kedro_logs_to_prefect(logger_names: list[str]) -> Iterator[None]:
    """Attach Prefect's API log handler to `logger_names` for the duration of a run.

    A logger the user left unconfigured (level NOTSET) gets INFO for the run, so
    node `logger.info(...)` lines show up; a level the user set is kept.
    """
    added: list[tuple[logging.Logger, logging.Handler, int]] = []
    for name in logger_names:
        logger = logging.getLogger(name)
        if any(isinstance(h, APILogHandler) for h in logger.handlers):
            continue  # the user already set PREFECT_LOGGING_EXTRA_LOGGERS for it
        handler = APILogHandler()
        logger.addHandler(handler)
        added.append((logger, handler, logger.level))
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, added_handler, level in added:
            logger.removeHandler(added_handler)
            logger.setLevel(level)
