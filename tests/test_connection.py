"""Which API and which credentials: Prefect's own rules, and refusals before any request."""

from __future__ import annotations

import pytest

from kedro_prefect_hooks.config import ConfigError, parse_config
from kedro_prefect_hooks.registration.connection import PrefectApiError, resolve_api


@pytest.fixture(autouse=True)
def no_prefect_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))  # no profile
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_with_a_key_and_an_auth_string_the_auth_string_is_sent_as_prefect_does(monkeypatch):
    """Seen: the plugin sent the key and got 401 where the prefect CLI in the same shell worked."""
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_key")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:secret")
    api = resolve_api("https://prefect.example.com/api")
    assert api.headers == {"Authorization": "Basic YWRtaW46c2VjcmV0"}  # base64("admin:secret")
    assert api.worker_environment() == {
        "PREFECT_API_URL": "https://prefect.example.com/api",
        "PREFECT_API_AUTH_STRING": "admin:secret",
        "PREFECT_API_KEY": "pnu_key",
    }


def test_credentials_in_the_url_reach_the_worker_as_an_auth_string():
    """A worker given them in the URL dies with 401 on Prefect's event stream."""
    api = resolve_api("http://us%40r:p%3Ass@127.0.0.1:4200/api")
    assert api.url == "http://127.0.0.1:4200/api"
    assert api.worker_environment()["PREFECT_API_AUTH_STRING"] == "us@r:p:ss"
    assert "p:ss" not in repr(api)


def test_a_key_that_no_header_can_carry_is_refused_before_any_request(monkeypatch):
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_clé_€")
    with pytest.raises(PrefectApiError, match="non-ASCII"):
        resolve_api("https://api.prefect.cloud/api/accounts/a/workspaces/w")


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://prefect.internal:4200/api", True),
        ("http://10.0.0.5/api", True),
        ("https://prefect.internal/api", False),
        ("http://127.0.0.1:4200/api", False),
        ("http://localhost:4200/api", False),
        ("http://[::1]:4200/api", False),
    ],
)
def test_an_api_key_is_never_sent_over_plain_http_to_another_host(monkeypatch, url, refused):
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_secret")
    if refused:
        with pytest.raises(PrefectApiError, match="refusing to send PREFECT_API_KEY over plain http"):
            resolve_api(url)
    else:
        assert resolve_api(url).headers == {"Authorization": "Bearer pnu_secret"}


@pytest.mark.parametrize("url", ["http://[::1/api", "ftp://host/api", "http:///api", "http://host:99999/api"])
def test_a_bad_url_from_the_environment_is_an_api_error_naming_its_source(monkeypatch, url):
    monkeypatch.setenv("PREFECT_API_URL", url)
    with pytest.raises(PrefectApiError, match=r"PREFECT_API_URL = .* cannot be used"):
        resolve_api(None)


def test_spaces_around_a_url_are_dropped(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "  http://127.0.0.1:4200/api/  ")
    assert resolve_api(None).url == "http://127.0.0.1:4200/api"
    assert parse_config({"api_url": "http://127.0.0.1:4200/api  "}).api_url == "http://127.0.0.1:4200/api"


@pytest.mark.parametrize("url", ["http://[::1/api", "http://127.0.0.1:4200/my api", "127.0.0.1:4200"])
def test_a_bad_api_url_in_prefect_yml_is_a_config_error(url):
    with pytest.raises(ConfigError, match="key `api_url`"):
        parse_config({"api_url": url})
