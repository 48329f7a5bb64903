"""Remembering what the server refused, so that later sessions do not send it again and again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.local.processes import state_dir, write_private


class RefusalRecord:
    """The last set of deployments the server refused, per API, under .kedro-prefect/."""

    def __init__(self, project_path: Path, api_url: str):
        self.path = state_dir(project_path) / "refused.json"
        self.api_url = api_url

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

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
