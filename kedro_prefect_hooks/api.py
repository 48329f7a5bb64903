"""Talking to the Prefect REST API with the standard library.

Why not Prefect's client: importing prefect costs ~1-2 s on every Kedro session,
its client retries for seconds when the API is down, and its sync calls turn into
coroutines when an event loop already runs (Jupyter). Why not httpx: importing it
and building its client costs ~0.1 s per session (measured), most of the hook's
budget. A blocking urllib request with a short timeout has none of these costs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from kedro_prefect_hooks.compat import TOMLDecodeError, read_toml

PAGE_SIZE = 200
# The server answers these when asked to retry (e.g. SQLite busy under load); a
# server that answers is alive, so a few short waits cost little.
RETRY_STATUSES = (429, 502, 503)
RETRY_WAITS = (0.2, 0.5, 1.0, 2.0)


class PrefectApiError(RuntimeError):
    """The Prefect API could not be reached or refused a request."""


class PrefectUnavailable(PrefectApiError):
    """prefect cannot be imported here (a broken or incompatible install): handled like an API error."""


@dataclass(frozen=True)
class ApiSettings:
    """Where the API is and how to authenticate.

    Secrets live only in `headers` (kept out of the repr); `url` never holds
    credentials, so it is safe in messages.
    """

    url: str
    source: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def resolve_api(configured_url: str | None) -> ApiSettings | None:
    """The API to use: `api_url` from prefect.yml, then PREFECT_API_URL, then the active profile."""
    profile_name, profile = _active_profile()

    def setting(name: str) -> str | None:
        return os.environ.get(name) or profile.get(name) or None

    if configured_url:
        url, source = configured_url, "api_url in prefect.yml"
    elif os.environ.get("PREFECT_API_URL"):
        url, source = os.environ["PREFECT_API_URL"], "PREFECT_API_URL"
    elif profile.get("PREFECT_API_URL"):
        url, source = profile["PREFECT_API_URL"], f"Prefect profile '{profile_name}'"
    else:
        return None
    parts = urlsplit(url)
    user_info, _, host = parts.netloc.rpartition("@")
    headers = {}
    if auth_string := user_info or setting("PREFECT_API_AUTH_STRING"):
        headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
    if key := setting("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    url = urlunsplit(parts._replace(netloc=host)).rstrip("/")
    return ApiSettings(url=url, source=source, headers=headers)


def _active_profile() -> tuple[str, dict[str, str]]:
    """The active Prefect profile's settings, read from profiles.toml without importing prefect."""
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = read_toml(path)
    except (OSError, TOMLDecodeError):
        return "", {}
    name = os.environ.get("PREFECT_PROFILE") or data.get("active") or ""
    profile = data.get("profiles", {}).get(name, {})
    return name, {k: str(v) for k, v in profile.items() if isinstance(v, (str, int, float))}


class PrefectApi:
    """The few API calls registration needs; every failure becomes a PrefectApiError."""

    def __init__(self, settings: ApiSettings, timeout: float):
        self.settings = settings
        self.timeout = timeout
        self._headers = {
            **settings.headers,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body); 404 and 409 are returned, other errors raised."""
        request = urllib.request.Request(
            self.settings.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers=self._headers,
            method=method,
        )
        for wait in (*RETRY_WAITS, None):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    status, raw = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, raw = exc.code, exc.read()
            except TimeoutError:
                raise self._error(f"no answer within {self.timeout:g} s") from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                    raise self._error(f"no answer within {self.timeout:g} s") from None
                raise self._error(f"cannot connect ({exc.reason})") from None
            except OSError as exc:  # connection reset, bad status line...
                raise self._error(f"connection failed ({exc})") from None
            if status not in RETRY_STATUSES or wait is None:
                break
            time.sleep(wait)
        payload = _decode(raw)
        if status >= 400 and status not in (404, 409):
            raise self._error(f"{method} {path} answered {status}: {_detail(payload, raw)}")
        return status, payload

    def _error(self, cause: str) -> PrefectApiError:
        return PrefectApiError(f"Prefect API at {self.settings.url} ({self.settings.source}): {cause}")

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self._request(method, path, body)
        if status >= 400:
            raise self._error(f"{method} {path} answered {status}: {_detail(payload, b'')}")
        return payload

    def deployments_tagged(self, tags: list[str]) -> list[dict[str, Any]]:
        """Every deployment carrying all `tags`, one request per 200."""
        found: list[dict[str, Any]] = []
        while True:
            page = self._json(
                "POST",
                "/deployments/filter",
                {
                    "deployments": {"tags": {"all_": tags}},
                    "limit": PAGE_SIZE,
                    "offset": len(found),
                },
            )
            found.extend(page)
            if len(page) < PAGE_SIZE:
                return found

    def count_deployments(self, tags: list[str]) -> int:
        """How many deployments carry all `tags`: the cheap check for "nothing changed"."""
        return self._json("POST", "/deployments/count", {"deployments": {"tags": {"all_": tags}}})

    def ensure_work_pool(self, name: str, base_job_template: Any) -> bool:
        """Create a process pool `name` unless it exists; True when created.

        `base_job_template` is a callable so prefect is imported only for a new pool.
        """
        if self._request("GET", f"/work_pools/{name}")[0] != 404:
            return False
        status, _ = self._request(
            "POST",
            "/work_pools/",
            {"name": name, "type": "process", "base_job_template": base_job_template()},
        )
        return status != 409  # 409: another session created it first

    def ensure_flow(self, name: str) -> str:
        """The id of flow `name`; the API creates it or returns the existing one."""
        return self._json("POST", "/flows/", {"name": name})["id"]

    def upsert_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or fully replace the deployment named by (flow_id, name)."""
        return self._json("POST", "/deployments/", body)

    def delete_deployment(self, deployment_id: str) -> None:
        self._request("DELETE", f"/deployments/{deployment_id}")

    def deployment_by_name(self, flow: str, name: str) -> dict[str, Any] | None:
        status, payload = self._request(
            "GET", f"/deployments/name/{quote(flow, safe='')}/{quote(name, safe='')}"
        )
        return None if status == 404 else payload

    def flow_name(self, flow_id: str) -> str:
        return self._json("GET", f"/flows/{flow_id}")["name"]

    def create_flow_run(self, deployment_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """What `prefect deployment run` does: a flow run scheduled now, for a worker to pick up."""
        return self._json("POST", f"/deployments/{deployment_id}/create_flow_run", {"parameters": parameters})

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/flow_runs/{flow_run_id}")

    def last_flow_run(self, deployment_id: str) -> dict[str, Any] | None:
        runs = self._json(
            "POST",
            "/flow_runs/filter",
            {
                "deployments": {"id": {"any_": [deployment_id]}},
                "sort": "EXPECTED_START_TIME_DESC",
                "limit": 1,
            },
        )
        return runs[0] if runs else None

    def task_run_states(self, flow_run_id: str) -> list[str]:
        runs = self._json("POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
        return [run["state"]["type"] for run in runs if run.get("state")]

    def pool_workers(self, pool: str) -> list[dict[str, Any]]:
        """The workers Prefect knows for `pool`, with status and last heartbeat; [] for no pool."""
        status, payload = self._request("POST", f"/work_pools/{pool}/workers/filter", {})
        return [] if status == 404 else payload


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _detail(payload: Any, raw: bytes) -> str:
    detail = payload.get("detail") or payload if isinstance(payload, dict) else raw.decode(errors="replace")
    return re.sub(r"\s+", " ", str(detail))[:300]
