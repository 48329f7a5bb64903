"""Which Prefect API to talk to and how to authenticate, decided as Prefect's own client does.

Read without importing prefect: `api_url` from prefect.yml, else Prefect's own
settings in Prefect's order (PREFECT_API_URL, ./.env, ./prefect.toml, pyproject's
[tool.prefect], the active profile). Everything that cannot work is refused here,
before a request, with a message that names where the value came from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
from kedro_prefect_hooks.prefect_api.prefect_settings import first_setting, settings_layers

LOCAL_SERVER = "the local server of `kedro prefect server start`"


@dataclass(frozen=True)
class ApiSettings:
    """Where the API is and how to authenticate.

    `url` never holds credentials, so it is safe in messages; the secrets are kept
    out of the repr. A worker the plugin starts gets the same three values.
    """

    url: str
    source: str  # where the URL came from, for messages; LOCAL_SERVER for this project's own server
    auth_string: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    local_server: bool = False  # the API is this project's `kedro prefect server start`, however found

    @property
    def headers(self) -> dict[str, str]:
        """Prefect's rule: basic auth from the auth string if there is one, else the API key."""
        if self.auth_string:
            import base64

            return {"Authorization": "Basic " + base64.b64encode(self.auth_string.encode()).decode()}
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    def worker_environment(self) -> dict[str, str]:
        """The settings a `prefect worker` (and its flow runs) needs to reach this API as we do."""
        env = {"PREFECT_API_URL": self.url}
        if self.auth_string:
            env["PREFECT_API_AUTH_STRING"] = self.auth_string
        if self.api_key:
            env["PREFECT_API_KEY"] = self.api_key
        return env


def url_problem(url: str) -> str | None:
    """Why `url` cannot be an API URL, or None: checked before any request is built."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        return f"it cannot be parsed ({exc})"
    if parts.scheme not in ("http", "https"):
        return "it is not an http(s) URL"
    if not parts.hostname:
        return "it names no host"
    if any(character.isspace() for character in url):
        return "it contains spaces"
    return None


def resolve_api(configured_url: str | None, directory: Path | None = None) -> ApiSettings | None:
    """The API to use, or None when nothing names one; PrefectApiError when it cannot be used.

    Prefect's settings files are read in `directory` (default: the working directory, as Prefect does).
    """
    layers = settings_layers(directory)

    def setting(name: str) -> str | None:
        found = first_setting(layers, name)
        return found[0] if found else None

    if configured_url:
        url, source = configured_url, "api_url in prefect.yml"
    elif found := first_setting(layers, "PREFECT_API_URL"):
        url, source = found
    else:
        return None
    url = url.strip().rstrip("/")
    if problem := url_problem(url):
        raise PrefectApiError(f"{source} = {url!r} cannot be used: {problem}; e.g. http://127.0.0.1:4200/api")
    parts = urlsplit(url)
    user_info, _, host = parts.netloc.rpartition("@")
    settings = ApiSettings(
        url=urlunsplit(parts._replace(netloc=host)),
        source=source,
        auth_string=unquote(user_info) or setting("PREFECT_API_AUTH_STRING"),
        api_key=setting("PREFECT_API_KEY"),
    )
    _check_credentials(settings, parts.scheme, parts.hostname or "")
    return settings


def _check_credentials(settings: ApiSettings, scheme: str, host: str) -> None:
    if settings.api_key and not settings.api_key.isascii():
        raise PrefectApiError(
            f"PREFECT_API_KEY for {settings.url} has non-ASCII characters, which an HTTP header "
            "cannot carry; copy the key again"
        )
    if settings.api_key and not settings.auth_string and scheme == "http" and not _loopback(host):
        raise PrefectApiError(
            f"refusing to send PREFECT_API_KEY over plain http to {host} ({settings.source}): "
            "anyone on the network could read it; use an https:// URL"
        )


def same_api(a: str, b: str) -> bool:
    """Whether two API URLs name the same server: loopback names alike, a trailing / aside."""

    def key(url: str) -> tuple:
        parts = urlsplit(url.strip().rstrip("/"))
        host = parts.hostname or ""
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = None
        return (parts.scheme, "loopback" if _loopback(host) else host.lower(), port, parts.path.rstrip("/"))

    return key(a) == key(b)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ui_url(api_url: str, flow_run_id: str | None = None) -> str:
    """The Prefect UI beside an API (`http://host:4200/api` -> `http://host:4200`), or a flow run's page in it."""
    ui = api_url.removesuffix("/api")
    return f"{ui}/runs/flow-run/{flow_run_id}" if flow_run_id else ui
