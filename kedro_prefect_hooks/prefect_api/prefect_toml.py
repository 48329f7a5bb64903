"""The `prefect.toml` that `kedro prefect server start` writes into the project.

Prefect reads `./prefect.toml`, so the `prefect` CLI run in the project talks to the
project's local server with no `export`. The file says who wrote it; `server stop`
removes it only while it is exactly what was written, and a user's own file is never
touched.
"""

from __future__ import annotations

from pathlib import Path

from kedro_prefect_hooks.compat import TOMLDecodeError, read_toml
from kedro_prefect_hooks.prefect_api.prefect_settings import first_setting, settings_layers

FILE_NAME = "prefect.toml"
MARK = "# Written by kedro-prefect-hooks (`kedro prefect server start`):"


def render(url: str) -> str:
    return (
        f"{MARK}\n"
        "# the prefect CLI and Kedro commands run in this folder use this project's local server.\n"
        "# `kedro prefect server stop` removes this file. Keep it out of git (.gitignore).\n"
        "[api]\n"
        f'url = "{url}"\n'
    )


def configured_url(path: Path) -> str | None:
    """The `[api] url` of a prefect.toml, if it has one."""
    try:
        url = read_toml(path).get("api", {}).get("url")
    except (OSError, TOMLDecodeError, AttributeError):
        return None
    return url if isinstance(url, str) else None


def is_ours(path: Path) -> bool:
    """Written by `server start` and unchanged since: only such a file is rewritten or removed."""
    try:
        text = path.read_text()
    except OSError:
        return False
    url = configured_url(path)
    return text.startswith(MARK) and url is not None and text == render(url)


def point_prefect_cli_at(project_path: Path, url: str) -> str:
    """Write `<project>/prefect.toml` for `url`: "written", "current" (already so), or "theirs" (left alone)."""
    path = Path(project_path) / FILE_NAME
    if path.exists() and not is_ours(path):
        return "theirs"
    if path.exists() and path.read_text() == render(url):
        return "current"
    temporary = path.with_name(f".{FILE_NAME}.tmp")
    temporary.write_text(render(url))
    temporary.replace(path)
    return "written"


def remove_ours(project_path: Path) -> str | None:
    """Remove `<project>/prefect.toml` if it is ours: "removed", "theirs" (left), or None (no file)."""
    path = Path(project_path) / FILE_NAME
    if not path.exists():
        return None
    if not is_ours(path):
        return "theirs"
    path.unlink()
    return "removed"


def start_lines(project_path: Path, url: str) -> list[str]:
    """What `server start` says about the prefect CLI: the file written, or the line to paste."""
    outcome = point_prefect_cli_at(project_path, url)
    if outcome == "theirs":
        if configured_url(Path(project_path) / FILE_NAME) == url:
            return ["Your prefect.toml already points the prefect CLI in the project folder at it."]
        return [
            "prefect.toml exists and was not written by kedro-prefect-hooks: left as it is. "
            "For the prefect CLI to use this server, run:",
            f"  export PREFECT_API_URL={url}",
        ]
    lines = [
        ("Wrote prefect.toml" if outcome == "written" else "prefect.toml")
        + " in the project folder: Kedro commands and the prefect CLI run there use this server "
        "(`kedro prefect server stop` removes the file; add prefect.toml to .gitignore)."
    ]
    wins = first_setting(settings_layers(project_path), "PREFECT_API_URL")
    if wins and wins[0].rstrip("/") != url:
        lines.append(
            f"But {wins[1]} = {wins[0]} comes first, for the prefect CLI and for Kedro commands: "
            "unset it to use this server."
        )
    return lines
