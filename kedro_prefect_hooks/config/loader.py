"""Reading the `prefect` key through the project's Kedro config loader, base and env merged softly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro_prefect_hooks.config import ConfigError, PrefectConfig, parse_config
from kedro_prefect_hooks.config.file_errors import describe

CONFIG_KEY = "prefect"
CONFIG_PATTERNS = ["prefect*", "prefect*/**", "**/prefect*"]
INIT_HINT = "run `kedro prefect init` to write conf/base/prefect.yml"


def loader_env(config_loader: Any) -> str | None:
    """The env a config loader reads beside base: its own, else its default run env (`local` in
    a new project). A session's loader already holds KEDRO_ENV (project.session_env)."""
    return config_loader.env or getattr(config_loader, "default_run_env", None) or None


def missing_env_folder(config_loader: Any) -> Path | None:
    """The run env's folder when it does not exist (`kedro run -e typo`); None otherwise.

    Kedro's loader then fails every key, which would read as "no prefect.yml".
    Only local conf sources are checked.
    """
    conf_source = Path(str(getattr(config_loader, "conf_source", "conf")))
    env = loader_env(config_loader)
    if not env or not conf_source.is_dir():
        return None
    folder = conf_source / env
    return None if folder.is_dir() else folder


def config_files(config_loader: Any) -> list[Path]:
    """The files the `prefect` key reads, base first, for error messages."""
    conf_source = Path(getattr(config_loader, "conf_source", "conf"))
    envs = [config_loader.base_env, loader_env(config_loader)]
    patterns = config_loader.config_patterns.get(CONFIG_KEY, CONFIG_PATTERNS)
    found: list[Path] = []
    for env in dict.fromkeys(e for e in envs if e):
        for pattern in patterns:
            for path in sorted((conf_source / env).glob(pattern)):
                if path.is_file() and path.suffix in (".yml", ".yaml", ".json") and path not in found:
                    found.append(path)
    return found


def load_config(config_loader: Any) -> PrefectConfig | None:
    """Read and validate the project's prefect config; None when there is none.

    Adds the `prefect` pattern and a soft merge only when the project set neither,
    so base and env files combine key by key, as users expect.
    """
    from kedro.config import MissingConfigException

    if folder := missing_env_folder(config_loader):
        envs = sorted(p.name for p in folder.parent.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise ConfigError(
            f"the Kedro env {folder.name!r} has no folder {folder}: create it, or use one of {envs}"
        )
    if CONFIG_KEY not in config_loader.config_patterns:
        config_loader.config_patterns[CONFIG_KEY] = list(CONFIG_PATTERNS)
    merge_strategy = getattr(config_loader, "merge_strategy", None)
    if isinstance(merge_strategy, dict):
        merge_strategy.setdefault(CONFIG_KEY, "soft")
    try:
        raw = config_loader[CONFIG_KEY]
    except MissingConfigException:
        return None
    except Exception as exc:  # YAML, a list for a mapping, a duplicate key, an interpolation
        raise ConfigError(f"Invalid prefect config: {describe(config_files(config_loader), exc)}") from exc
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"Invalid prefect config: {describe(config_files(config_loader), TypeError(raw))}")
    return parse_config(raw, config_files(config_loader))
