"""The generated configuration reference covers every key of every config model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pydantic import BaseModel

from kedro_prefect_hooks import config

HOOKS = Path(__file__).resolve().parents[1] / "docs" / "hooks.py"


def load_docs_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", HOOKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_config_key_has_a_description_in_the_reference(tmp_path, monkeypatch):
    hooks = load_docs_hooks()
    docs = hooks.field_docstrings()
    modules = [
        importlib.import_module(f"{config.__name__}.{p.stem}")
        for p in Path(config.__file__).parent.glob("*.py")
    ]
    models = {
        m
        for module in modules
        for m in vars(module).values()
        if isinstance(m, type)
        and issubclass(m, BaseModel)
        and m.__module__.startswith(config.__name__)
        and m.__name__ != "_Model"
    }
    missing = [f"{m.__name__}.{f}" for m in models for f in m.model_fields if (m.__name__, f) not in docs]
    assert missing == []
    monkeypatch.setattr(hooks, "OUT", tmp_path / "reference.md")
    hooks.write_reference()
    text = (tmp_path / "reference.md").read_text()
    for key in (
        "`defaults.run.node_tags.<name>.retries`",
        "`worker.query_seconds`",
        "`defaults.schedule.cron`",
    ):
        assert key in text


def test_the_committed_reference_is_what_the_docs_hook_generates():
    """docs/reference.md is committed, so links to it work on GitHub and in the sdist: it must not drift."""
    hooks = load_docs_hooks()
    committed = HOOKS.parent / "reference.md"
    assert committed.exists(), "docs/reference.md is missing: run `python docs/hooks.py`"
    assert committed.read_text() == hooks.reference_text(), (
        "docs/reference.md differs from the config models: run `python docs/hooks.py` and commit it"
    )
