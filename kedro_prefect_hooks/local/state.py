"""The project's state folder, `.kedro-prefect/`: private files, written atomically, read with care.

Whatever is found there may have been edited by hand, cut short by a full disk, or written by
another version. Every read checks the shape of what it finds; anything unexpected is removed
with one warning, and the caller rebuilds it as if it had never been there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

STATE_DIR = ".kedro-prefect"
# Most file systems allow 255 bytes per file name; a suffix and a hash still fit under this.
MAX_NAME_BYTES = 200

logger = logging.getLogger(__name__)


def state_dir(project_path: Path) -> Path:
    return Path(project_path) / STATE_DIR


def ensure_private(folder: Path) -> Path:
    """`folder`, created if needed, readable by its owner only: it holds the local
    server's database, logs that may quote settings, and process records."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)  # made by an earlier version, or by a loose umask
    return folder


def write_private(path: Path, text: str) -> None:
    """Write `path` atomically, owner-only, in an owner-only folder."""
    ensure_private(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    temporary.replace(path)


def read_state(path: Path, problem: Callable[[Any], str | None]) -> Any:
    """The JSON in `path` if `problem(data)` finds none; else None, the file removed, one warning.

    A missing file is None without a word: it is made when first needed.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _discard(path, f"it cannot be read ({exc})")
    try:
        data = json.loads(text)
    except ValueError:
        return _discard(path, "it is not JSON")
    try:
        found = problem(data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a check that met the unexpected
        found = f"{type(exc).__name__}: {exc}"
    return data if found is None else _discard(path, found)


def _discard(path: Path, why: str) -> None:
    logger.warning(
        "kedro-prefect-hooks: %s/%s was not what this plugin writes (%s): removed, rebuilt when needed",
        path.parent.name,
        path.name,
        why,
    )
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def file_name(name: str, suffix: str) -> str:
    """`name` %-encoded as one file name (no / or ..), cut to fit with a hash of the whole when long."""
    encoded = quote(name, safe="")
    if len(encoded.encode()) + len(suffix) <= MAX_NAME_BYTES:
        return encoded + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{encoded[: MAX_NAME_BYTES - len(suffix) - 17]}-{digest}{suffix}"


def is_text_map(value: Any, values: type | tuple[type, ...] = str) -> bool:
    """A JSON object whose keys are strings and whose values are all of type `values`."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, values) and not isinstance(v, bool) for k, v in value.items()
    )


def is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
