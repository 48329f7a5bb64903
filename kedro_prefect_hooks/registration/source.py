"""How a run reaches the project's code: Prefect pull steps.

A local source is this checkout on this machine, so its steps name its path. A
directory or git source is the same from every checkout: two clones of a project
compute identical deployments, and the second writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from kedro_prefect_hooks.config.source import CodeSource

CLONE_STEP = "clone-project"


def pull_steps(source: Literal["local"] | CodeSource, project_path: Path) -> list[dict[str, Any]]:
    """The steps a worker runs before the flow: end in the project directory, clone it first if git."""
    if source == "local" or not isinstance(source, CodeSource):
        return [_working_directory(str(project_path))]
    if source.directory is not None:
        return [_working_directory(source.directory)]
    git = source.git
    assert git is not None  # CodeSource holds exactly one
    clone: dict[str, Any] = {"id": CLONE_STEP, "repository": git.url}
    if git.branch:
        clone["branch"] = git.branch
    if git.commit:
        clone["commit_sha"] = git.commit
    if git.credentials:
        block_type, name = git.credentials.split("/", 1)
        clone["credentials"] = f"{{{{ prefect.blocks.{block_type}.{name} }}}}"
    if git.access_token_secret:
        clone["access_token"] = f"{{{{ prefect.blocks.secret.{git.access_token_secret} }}}}"
    directory = f"{{{{ {CLONE_STEP}.directory }}}}" + (f"/{git.subdirectory}" if git.subdirectory else "")
    return [{"prefect.deployments.steps.git_clone": clone}, _working_directory(directory)]


def _working_directory(directory: str) -> dict[str, Any]:
    return {"prefect.deployments.steps.set_working_directory": {"directory": directory}}
