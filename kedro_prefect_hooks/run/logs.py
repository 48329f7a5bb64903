"""Send Kedro's log lines and warnings to the Prefect run, as PREFECT_LOGGING_EXTRA_LOGGERS would, without it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.logging.handlers import APILogHandler

# Where `logging.captureWarnings(True)` sends Python warnings (Kedro's among them).
WARNINGS_LOGGER = "py.warnings"


@contextmanager
def kedro_logs_to_prefect(logger_names: list[str]) -> Iterator[None]:
    """Attach Prefect's API log handler to `logger_names`, and to Python's warnings, for a run.

    A logger the user left unconfigured (level NOTSET) gets INFO for the run, so
    node `logger.info(...)` lines show up; a level the user set is kept. Warnings
    (`warnings.warn` in a node, Kedro's own) are captured into logging for the run,
    as Kedro's rich handler does for its console, and the capture is put back after.
    """
    capturing = _capturing_warnings()
    logging.captureWarnings(True)
    added: list[tuple[logging.Logger, logging.Handler, int]] = []
    for name in dict.fromkeys([*logger_names, WARNINGS_LOGGER]):
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
        logging.captureWarnings(capturing)


def _capturing_warnings() -> bool:
    """Whether `logging.captureWarnings(True)` is in force (stdlib keeps the original
    `warnings.showwarning` in `logging._warnings_showwarning` while it is)."""
    return getattr(logging, "_warnings_showwarning", None) is not None
