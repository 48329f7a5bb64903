"""Importing prefect for registration: the one place the hook's process imports it.

Here, not in compat.py, since it imports the plugin's own flow module (for the flow's
parameter schema): compat.py, which every layer uses, then imports nothing of ours.
"""

from __future__ import annotations

import logging
import sys

from kedro_prefect_hooks.prefect_api.errors import PrefectUnavailable


def import_prefect() -> None:
    """Import what registration needs from prefect without letting it take over logging.

    On its first full import prefect runs `logging.config.dictConfig` and, seeing
    Kedro's rich handler as no "user handler", swaps the root handlers for its own.
    Any import failure becomes PrefectUnavailable, which the hook reports like an
    API error instead of failing the Kedro command.
    """
    if "kedro_prefect_hooks.flow" in sys.modules and "prefect.workers.process" in sys.modules:
        return
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import prefect.workers.process  # noqa: F401  (the process pool's job template)

        import kedro_prefect_hooks.flow  # noqa: F401  (the flow's parameter schema)
    except Exception as exc:
        raise PrefectUnavailable(
            f"prefect could not be imported ({type(exc).__name__}: {exc}); "
            "check the install with `python -c 'import prefect.flows'`"
        ) from exc
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
