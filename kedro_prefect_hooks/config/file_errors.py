"""What is wrong in a prefect.yml that Kedro's config loader could not read: file, line and fix.

Kedro's loader fails with long tracebacks that name `<file>`, line 1 or no file at all
(a YAML syntax error, a file holding a list, a duplicate key, an interpolation it cannot
resolve). The files are read again here, with marks, to say where and what.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kedro_prefect_hooks.config.base import _display


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping, as Kedro's loader does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    problem=f"key `{key}` is given twice (first on line {seen[key]})",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def describe(files: list[Path], error: Exception) -> str:
    """The first problem found in `files`, else Kedro's own message; in a few lines."""
    for path in files:
        try:
            text = path.read_text()
        except OSError as exc:
            return f"{_display([path])}: cannot be read ({exc})"
        problem = _yaml_problem(path, text) or _interpolation_problem(path, text, error)
        if problem:
            return problem
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{_display(files)}: Kedro's config loader failed: {first}"


def _yaml_problem(path: Path, text: str) -> str | None:
    if path.suffix == ".json":
        return None  # Kedro reads JSON with its YAML reader too; syntax errors are caught below
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        return f"{_where(path, exc.problem_mark)}: {exc.problem}; keep one of them"
    except yaml.MarkedYAMLError as exc:
        context = f" ({exc.context}, from line {exc.context_mark.line + 1})" if exc.context_mark else ""
        return (
            f"{_where(path, exc.problem_mark or exc.context_mark)}: not valid YAML: {exc.problem}{context}; "
            "check brackets, quotes and indentation there"
        )
    except yaml.YAMLError as exc:
        return f"{_display([path])}: not valid YAML: {exc}"
    if data is not None and not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        return (
            f"{_display([path])}: the file holds {kind}, not a mapping of keys: write each key at "
            "the top level, e.g. `pipelines: [p_a, p_b]`"
        )
    return None


def _interpolation_problem(path: Path, text: str, error: Exception) -> str | None:
    """An interpolation the loader could not resolve, found in this file at its key."""
    full_key = getattr(error, "full_key", None)
    if not full_key or "interpolation" not in type(error).__name__.lower():
        return None
    line, value = _key_line(text, str(full_key))
    if line is None or "${" not in str(value):
        return None
    cause = str(error).strip().splitlines()[0]
    fix = "give the value itself, or a default"
    if "oc.env" in str(value):
        fix = (
            "Kedro resolves ${oc.env:...} only in credentials: for the API, set PREFECT_API_URL in the "
            "environment (or ./.env) instead of `api_url`; for other keys, add the resolver to "
            'CONFIG_LOADER_ARGS = {"custom_resolvers": {...}} in settings.py'
        )
    return f"{_display([path])}, line {line}: key `{full_key}`: `{value}` cannot be resolved ({cause}); {fix}"


def _key_line(text: str, dotted: str) -> tuple[int | None, Any]:
    """(1-based line, raw value) of the dotted key in a YAML text; (None, None) if not found."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None, None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return None, None
        found = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        if found is None:
            return None, None
        node = found
    if node is None:
        return None, None
    return node.start_mark.line + 1, getattr(node, "value", None)


def _where(path: Path, mark: Any) -> str:
    return f"{_display([path])}, line {mark.line + 1}" if mark is not None else _display([path])
