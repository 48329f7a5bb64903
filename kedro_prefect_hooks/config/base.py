"""What every config model shares: forbidden unknown keys, the error type, Prefect's name rules,
and error messages that name the file and the dotted key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from kedro.framework.cli.utils import KedroCliError
from pydantic import BaseModel, ConfigDict, ValidationError

NAME_FIELDS = ("project", "pipeline", "env")
# Prefect refuses these in flow, deployment, work pool and work queue names.
BANNED_NAME_CHARACTERS = "/%&<>"
# Beyond these the server answers 500 or drops the connection (measured on 3.9).
MAX_INTERVAL_SECONDS = 100 * 365 * 24 * 3600
MAX_CONCURRENCY_LIMIT = 2**31 - 1
# Counts beyond these are typos (1e12 retries, 1e9 threads), never a plan.
MAX_RETRIES = 10_000
MAX_PROCESSES = 1024


class ShortError(KedroCliError):
    """An error a Kedro command prints in a few lines instead of a traceback.

    A KedroCliError, so click shows the message. The traceback shows with Kedro's
    `--verbose` (commands that have it) or KEDRO_PREFECT_HOOKS_TRACEBACK=1 (`kedro run`
    has no --verbose).
    """

    def show(self, file: Any = None) -> None:
        # Kedro's show() reads sys.exc_info(), which click 8.4 has cleared by now
        # (it prints "NoneType: None"); the exception carries its own traceback.
        import os
        import sys

        import click

        file = file or sys.stderr
        if self.VERBOSE_ERROR or os.environ.get("KEDRO_PREFECT_HOOKS_TRACEBACK"):
            import traceback

            click.secho("".join(traceback.format_exception(self)), file=file, nl=False, fg="yellow")
        else:
            click.secho(
                f"Error: {self.message}\n(full traceback: KEDRO_PREFECT_HOOKS_TRACEBACK=1)",
                file=file,
                fg="yellow",
            )


class ConfigError(ShortError, ValueError):
    """The prefect config is invalid; the message names the file, the key and the fix."""


class _Model(BaseModel):
    # Field docstrings are read by docs/hooks.py for the configuration reference
    # (not at runtime: use_attribute_docstrings would cost each Kedro session 15 ms).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def prefect_name(value: str, what: str) -> str:
    """A name Prefect accepts as it is: no / % & < >, not blank."""
    banned = sorted({c for c in value if c in BANNED_NAME_CHARACTERS})
    if banned or not value.strip():
        raise ValueError(
            f"{what} name {value!r} "
            + (f"contains {' '.join(banned)}" if banned else "is blank")
            + f", which Prefect refuses in names ({' '.join(BANNED_NAME_CHARACTERS)})"
        )
    return value


def describe_errors(exc: ValidationError, files: list[Path]) -> str:
    lines = []
    errors = exc.errors()
    for error in errors:
        if _other_branch_of_a_union(error, errors):
            continue
        loc = [str(part) for part in error["loc"] if not str(part).startswith(("function-", "literal["))]
        key = ".".join(loc) or "(top level)"
        where = _files_with_key(files, error["loc"]) or files
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling against the configuration reference"
        lines.append(f"  {_display(where)}: key `{key}`: {message}")
    return "Invalid prefect config:\n" + "\n".join(lines)


def _other_branch_of_a_union(error: Any, errors: list[Any]) -> bool:
    """`source: {git: ...}` with a typo: pydantic also reports that it is not the literal 'local'.

    A literal branch is dropped when another branch of the same union has errors: the user
    wrote that other kind of value.
    """
    loc = [str(part) for part in error["loc"]]
    branch = next((i for i, part in enumerate(loc) if part.startswith("literal[")), None)
    if branch is None:
        return False
    prefix = loc[:branch]
    return any(
        [str(part) for part in other["loc"]][:branch] == prefix
        and len(other["loc"]) > branch
        and not str(other["loc"][branch]).startswith("literal[")
        for other in errors
    )


def _display(files: list[Path]) -> str:
    if not files:
        return "conf/<env>/prefect.yml"
    cwd = Path.cwd()
    shown = []
    for path in files:
        try:
            shown.append(str(path.resolve().relative_to(cwd)))
        except ValueError:
            shown.append(str(path))
    return " or ".join(shown)


def _files_with_key(files: list[Path], loc: tuple[Any, ...]) -> list[Path]:
    """The files whose YAML holds the top-level key of `loc`."""
    if not loc:
        return []
    matches = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and loc[0] in data:
            matches.append(path)
    return matches


_FORBIDDEN = re.compile(r"[/%&<>]")


def sanitise(name: str) -> str:
    """Prefect forbids / % & < > in flow and deployment names: they become '-'."""
    return _FORBIDDEN.sub("-", name).strip() or "-"
