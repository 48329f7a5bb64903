"""MkDocs hook: writes docs/reference.md from the pydantic models, so the reference never drifts.

Types and defaults come from the models; descriptions from the docstrings under each
field in the modules of kedro_prefect_hooks/config/. The file is committed too, so that
links to it work outside the docs site; tests/test_docs.py fails when it is stale, and
`python docs/hooks.py` rewrites it.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from kedro_prefect_hooks import config as config_package
from kedro_prefect_hooks.config import PrefectConfig

OUT = Path(__file__).parent / "reference.md"


def field_docstrings() -> dict[tuple[str, str], str]:
    """(class name, field name) -> the string literal that follows the field."""
    folder = Path(inspect.getfile(config_package)).parent
    found = {}
    for node in (n for path in sorted(folder.glob("*.py")) for n in ast.walk(ast.parse(path.read_text()))):
        if isinstance(node, ast.ClassDef):
            body = node.body
            for item, after in itertools.pairwise(body):
                if (
                    isinstance(item, ast.AnnAssign)
                    and isinstance(item.target, ast.Name)
                    and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                ):
                    found[(node.name, item.target.id)] = after.value.value
    return found


def type_text(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(arg) for arg in args)
    if origin is typing.Literal:
        return " or ".join(json.dumps(arg) for arg in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_text(arg) for arg in args)}]"
    if annotation is type(None):
        return "null"
    if annotation is typing.Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see below"
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return "`" + json.dumps(value, default=str) + "`"


def model_section(model: type[BaseModel], prefix: str, docs: dict, seen: set) -> list[str]:
    own_doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")  # not BaseModel's
    lines = [
        f"## `{prefix or 'prefect.yml'}` ({model.__name__})",
        "",
        own_doc,
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    nested = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        description = docs.get((model.__name__, name), "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{key}` | {type_text(field.annotation)} | {default_text(field)} | {description} |")
        for sub in typing.get_args(field.annotation) or (field.annotation,):
            for candidate in typing.get_args(sub) or (sub,):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate not in seen:
                    seen.add(candidate)
                    is_mapping = typing.get_origin(field.annotation) is dict
                    nested.append((candidate, f"{key}.<name>" if is_mapping else key))
    lines.append("")
    for candidate, key in nested:
        lines += model_section(candidate, key, docs, seen)
    return lines


def reference_text() -> str:
    """The whole of docs/reference.md."""
    lines = [
        "# Configuration reference (generated)",
        "",
        "Every key of `conf/<env>/prefect.yml`, built from the plugin's pydantic models when the",
        "docs are built. Unknown keys are errors. See [Configuration](configuration.md) for",
        "examples and merge rules.",
        "",
    ]
    lines += model_section(PrefectConfig, "", field_docstrings(), {PrefectConfig})
    return "\n".join(lines) + "\n"


def write_reference() -> None:
    text = reference_text()
    if not OUT.exists() or OUT.read_text() != text:
        OUT.write_text(text)


def on_pre_build(config, **kwargs) -> None:
    write_reference()


if __name__ == "__main__":
    write_reference()
