"""Talking to the Prefect REST API with plain httpx.

Why not Prefect's client: importing prefect costs ~1-2 s on every Kedro session,
its client retries for seconds when the API is down, and its sync calls turn into
coroutines when an event loop already runs (Jupyter). A blocking httpx client
with a short timeout has none of these problems.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PAGE_SIZE = 200


class PrefectApiError(RuntimeError):
    """The Prefect API could not be reached or refused a request."""


@dataclass(frozen=True)
class ApiSettings:
    """Where the API is and how to authenticate; the secrets never reach a repr."""

    url: str
    source: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def display_url(self) -> str:
        return redact(self.url)

    def client(self, timeout: float) -> PrefectApi:
        return PrefectApi(self, timeout)


def redact(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


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
    headers = {}
    if key := setting("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    auth = None
    if auth_string := setting("PREFECT_API_AUTH_STRING"):
        user, _, password = auth_string.partition(":")
        auth = (user, password)
    return ApiSettings(url=url.rstrip("/"), source=source, headers=headers, auth=auth)


def _active_profile() -> tuple[str, dict[str, str]]:
    """The active Prefect profile's settings, read from profiles.toml without importing prefect."""
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return "", {}
    name = os.environ.get("PREFECT_PROFILE") or data.get("active") or ""
    profile = data.get("profiles", {}).get(name, {})
    return name, {k: str(v) for k, v in profile.items() if isinstance(v, (str, int, float))}


class PrefectApi:
    """The few API calls registration needs; every failure becomes a PrefectApiError."""

    def __init__(self, settings: ApiSettings, timeout: float):
        self.settings = settings
        self._http = httpx.Client(
            base_url=settings.url,
            headers=settings.headers,
            auth=settings.auth,
            timeout=timeout,
        )

    def __enter__(self) -> PrefectApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise self._error(f"no answer within {self._http.timeout.read:g} s") from None
        except httpx.HTTPError as exc:
            raise self._error(_short(exc)) from None
        if response.status_code >= 400 and response.status_code not in (404, 409):
            raise self._error(
                f"{method} {path} answered {response.status_code}: {_detail(response)}"
            )
        return response

    def _error(self, cause: str) -> PrefectApiError:
        return PrefectApiError(
            f"Prefect API at {self.settings.display_url} ({self.settings.source}): {cause}"
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise self._error(f"{method} {path} answered {response.status_code}: {_detail(response)}")
        return response.json()

    def deployments_tagged(self, tags: list[str]) -> list[dict[str, Any]]:
        """Every deployment carrying all `tags`, one request per 200."""
        found: list[dict[str, Any]] = []
        while True:
            page = self._json(
                "POST",
                "/deployments/filter",
                json={
                    "deployments": {"tags": {"all_": tags}},
                    "limit": PAGE_SIZE,
                    "offset": len(found),
                },
            )
            found.extend(page)
            if len(page) < PAGE_SIZE:
                return found

    def ensure_work_pool(self, name: str, base_job_template: Any) -> bool:
        """Create a process pool `name` unless it exists; True when created.

        `base_job_template` is a callable so prefect is imported only for a new pool.
        """
        if self._request("GET", f"/work_pools/{name}").status_code != 404:
            return False
        response = self._request(
            "POST",
            "/work_pools/",
            json={"name": name, "type": "process", "base_job_template": base_job_template()},
        )
        return response.status_code != 409  # 409: another session created it first

    def ensure_flow(self, name: str) -> str:
        """The id of flow `name`; the API creates it or returns the existing one."""
        return self._json("POST", "/flows/", json={"name": name})["id"]

    def upsert_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or fully replace the deployment named by (flow_id, name)."""
        return self._json("POST", "/deployments/", json=body)

    def delete_deployment(self, deployment_id: str) -> None:
        self._request("DELETE", f"/deployments/{deployment_id}")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return re.sub(r"\s+", " ", str(detail))[:300]


def _short(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({text})"
    return text
