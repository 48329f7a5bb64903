"""Prefect's own settings, read in Prefect's order without importing prefect.

Prefect 3 takes each setting from the first of: the environment, `./.env`,
`./prefect.toml`, `[tool.prefect]` in `./pyproject.toml`, then the active profile
(the files relative to the working directory). The plugin reads them the same way,
so a Kedro command and the `prefect` CLI run in the same folder use the same API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.compat import TOMLDecodeError, read_toml

PREFECT_TOML = "./prefect.toml"


@dataclass(frozen=True)
class Layer:
    """Settings from one place, by their environment variable names (PREFECT_API_URL...)."""

    source: str  # for messages; a setting from the environment is named by itself
    values: dict[str, str]


def settings_layers(directory: Path | None = None) -> list[Layer]:
    """Every place Prefect reads settings from, highest precedence first."""
    folder = Path.cwd() if directory is None else Path(directory)
    profile_name, profile = active_profile()
    return [
        Layer("", {k: v for k, v in os.environ.items() if k.startswith("PREFECT_")}),
        Layer("./.env", _dotenv(folder / ".env")),
        Layer(PREFECT_TOML, _toml_settings(folder / "prefect.toml", ())),
        Layer(
            "[tool.prefect] in ./pyproject.toml",
            _toml_settings(folder / "pyproject.toml", ("tool", "prefect")),
        ),
        Layer(f"Prefect profile '{profile_name}'", profile),
    ]


def first_setting(layers: list[Layer], name: str) -> tuple[str, str] | None:
    """(value, where it came from) of setting `name`, from the first layer that sets it."""
    for layer in layers:
        value = (layer.values.get(name) or "").strip()
        if value:
            return value, (f"{name} in {layer.source}" if layer.source == "./.env" else layer.source or name)
    return None


def prefect_home() -> Path:
    """Prefect's per-user folder (profiles, storage), as Prefect finds it."""
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def active_profile() -> tuple[str, dict[str, str]]:
    """The active Prefect profile's settings, from profiles.toml."""
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml").expanduser()
    try:
        data = read_toml(path)
    except (OSError, TOMLDecodeError):
        return "", {}
    name = os.environ.get("PREFECT_PROFILE") or data.get("active") or ""
    profile = data.get("profiles", {}).get(name, {})
    return name, {k: str(v) for k, v in profile.items() if isinstance(v, (str, int, float))}


def _toml_settings(path: Path, table: tuple[str, ...]) -> dict[str, str]:
    """`[api] url = ...` (under `table`) as {"PREFECT_API_URL": ...}; {} for a missing or broken file."""
    try:
        data: Any = read_toml(path)
    except (OSError, TOMLDecodeError):
        return {}
    for key in table:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    found: dict[str, str] = {}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                flatten(f"{prefix}_{key.upper()}", inner)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            found[prefix] = str(value)

    flatten("PREFECT", data if isinstance(data, dict) else {})
    return found


def _dotenv(path: Path) -> dict[str, str]:
    """PREFECT_* entries of a .env file, parsed as Prefect's settings parse it (python-dotenv)."""
    if not path.is_file():
        return {}
    try:
        from dotenv import dotenv_values  # prefect's settings depend on it
    except ImportError:
        return {}
    return {k: v for k, v in dotenv_values(path).items() if k.startswith("PREFECT_") and v is not None}
