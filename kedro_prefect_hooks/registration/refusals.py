"""Remembering what the server refused, so that later sessions do not send it again and again.

Only a definitive refusal of the configuration is remembered: a 4xx answer that judges the
body (400, 409, 422). A busy or unreachable server (5xx, 429, a timeout, a reset
connection) says nothing about the configuration: the next session simply tries again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.local.state import is_text_map, read_state, state_dir, write_private

DEFINITIVE_STATUSES = (400, 409, 422)


def is_definitive(status: int) -> bool:
    return status in DEFINITIVE_STATUSES


def _problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "not an object"
    for url, entry in data.items():
        if not is_text_map(entry) or set(entry) != {"fingerprint", "reason"}:
            return f"the entry for {url} is not a fingerprint and a reason"
    return None


class RefusalRecord:
    """The last set of deployments the server refused, per API, under .kedro-prefect/."""

    def __init__(self, project_path: Path, api_url: str):
        self.path = state_dir(project_path) / "refused.json"
        self.api_url = api_url

    def _read(self) -> dict[str, Any]:
        return read_state(self.path, _problem) or {}

    def earlier(self, version: str) -> str | None:
        entry = self._read().get(self.api_url) or {}
        return entry.get("reason") if entry.get("fingerprint") == version else None

    def remember(self, version: str, reason: str) -> None:
        data = self._read()
        data[self.api_url] = {"fingerprint": version, "reason": reason}
        write_private(self.path, json.dumps(data))

    def forget(self) -> None:
        data = self._read()
        if data.pop(self.api_url, None) is not None:
            write_private(self.path, json.dumps(data))
