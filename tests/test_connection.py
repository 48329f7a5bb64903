"""Which API and which credentials: Prefect's own rules, and refusals before any request."""

from __future__ import annotations

import pytest

from kedro_prefect_hooks.config import ConfigError, parse_config
from kedro_prefect_hooks.prefect_api.errors import PrefectApiError
from kedro_prefect_hooks.prefect_api.settings import LOCAL_SERVER, resolve_api


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


def write_settings_files(folder, *, dotenv=None, prefect_toml=None, pyproject=None, profile=None):
    """Prefect's settings files: ./.env, ./prefect.toml, ./pyproject.toml, $PREFECT_HOME/profiles.toml."""
    if dotenv:
        (folder / ".env").write_text(f"PREFECT_API_URL={dotenv}\n")
    if prefect_toml:
        (folder / "prefect.toml").write_text(f'[api]\nurl = "{prefect_toml}"\n')
    if pyproject:
        (folder / "pyproject.toml").write_text(
            f'[tool.kedro]\nx = 1\n\n[tool.prefect.api]\nurl = "{pyproject}"\n'
        )
    if profile:
        (folder / "home").mkdir(exist_ok=True)
        (folder / "home" / "profiles.toml").write_text(
            f'active = "mine"\n\n[profiles.mine]\nPREFECT_API_URL = "{profile}"\n'
        )


def test_the_api_comes_from_where_the_prefect_cli_in_this_folder_would_take_it(tmp_path, monkeypatch):
    """Prefect's order: environment > ./.env > ./prefect.toml > pyproject [tool.prefect] > profile."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    urls = {
        name: f"http://127.0.0.1:{port}/api"
        for port, name in enumerate(["env", "dotenv", "prefect_toml", "pyproject", "profile"], start=4201)
    }
    write_settings_files(
        tmp_path,
        dotenv=urls["dotenv"],
        prefect_toml=urls["prefect_toml"],
        pyproject=urls["pyproject"],
        profile=urls["profile"],
    )
    monkeypatch.setenv("PREFECT_API_URL", urls["env"])
    assert (resolve_api(None).url, resolve_api(None).source) == (urls["env"], "PREFECT_API_URL")
    monkeypatch.delenv("PREFECT_API_URL")
    assert (resolve_api(None).url, resolve_api(None).source) == (urls["dotenv"], "PREFECT_API_URL in ./.env")
    (tmp_path / ".env").unlink()
    assert (resolve_api(None).url, resolve_api(None).source) == (urls["prefect_toml"], "./prefect.toml")
    (tmp_path / "prefect.toml").unlink()
    assert resolve_api(None).url == urls["pyproject"]
    assert resolve_api(None).source == "[tool.prefect] in ./pyproject.toml"
    (tmp_path / "pyproject.toml").unlink()
    assert (resolve_api(None).url, resolve_api(None).source) == (urls["profile"], "Prefect profile 'mine'")
    assert (
        resolve_api("http://127.0.0.1:9999/api").source == "api_url in prefect.yml"
    )  # the plugin's own key first


def test_each_credential_is_taken_from_its_own_first_source(tmp_path, monkeypatch):
    """As in Prefect, the URL may come from prefect.toml and the key from the profile."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    write_settings_files(tmp_path, prefect_toml="https://prefect.example.com/api")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "profiles.toml").write_text(
        'active = "p"\n[profiles.p]\nPREFECT_API_KEY = "pnu_k"\n'
    )
    api = resolve_api(None)
    assert api.url == "https://prefect.example.com/api" and api.headers == {"Authorization": "Bearer pnu_k"}


def test_a_prefect_toml_left_by_a_stopped_local_server_is_named_not_silently_used(make_project, monkeypatch):
    """Another developer's server may listen on that port by now: the hook must not write there."""
    from kedro_prefect_hooks.local.server import local_server_url
    from kedro_prefect_hooks.prefect_api.find import find_api
    from kedro_prefect_hooks.prefect_api.prefect_toml import point_prefect_cli_at

    project = make_project()
    assert point_prefect_cli_at(project, "http://127.0.0.1:4200/api") == "written"
    monkeypatch.chdir(project)
    with pytest.raises(PrefectApiError, match="local server, which is not running"):
        find_api(None, project, local_server_url(project))
    # while that server runs, the file is the local server, however the URL is spelled
    running = find_api(None, project, "http://localhost:4200/api/")
    assert (running.url, running.source, running.local_server) == (
        "http://127.0.0.1:4200/api",
        LOCAL_SERVER,
        True,
    )


def test_the_local_server_is_used_only_when_nothing_names_an_api(tmp_path, monkeypatch):
    from kedro_prefect_hooks.prefect_api.find import find_api

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    local = "http://127.0.0.1:4321/api"
    assert find_api(None, tmp_path, local).source == LOCAL_SERVER
    named = find_api("https://prefect.example.com/api", tmp_path, local)
    assert (named.source, named.local_server) == ("api_url in prefect.yml", False)
    with pytest.raises(PrefectApiError, match="No Prefect API"):
        find_api(None, tmp_path, None)
