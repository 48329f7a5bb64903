"""Real Kedro projects for tests and benchmarks: `kedro new` (offline template) plus two pipelines."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
HOOK_SETTINGS = "\nfrom kedro_prefect_hooks import PrefectHook\n\nHOOKS = (PrefectHook(),)\n"

PIPELINES = {
    "data_processing": """
        from kedro.pipeline import Pipeline, node


        def double(x):
            return x * 2


        def create_pipeline(**kwargs):
            return Pipeline([node(double, "params:start", "doubled", name="double")])
    """,
    "data_science": """
        from kedro.pipeline import Pipeline, node


        def add_one(x):
            return x + 1


        def create_pipeline(**kwargs):
            return Pipeline([node(add_one, "doubled", "result", name="add_one")])
    """,
}


def new_project(root: Path) -> Path:
    """`kedro new` with the built-in template, which works offline."""
    subprocess.run(
        [str(BIN / "kedro"), "new", "--name", "Template Project", "--tools", "none",
         "--example", "n", "--telemetry", "no"],
        cwd=root, check=True, capture_output=True,
    )
    return root / "template-project"


def copy_project(
    template: Path,
    root: Path,
    prefect_yml: str | None = "pipelines: all\n",
    name: str | None = None,
    hook: bool = True,
) -> Path:
    """A copy of `template` under a fresh package name, with the pipelines and (maybe) the hook."""
    suffix = uuid.uuid4().hex[:8]
    package = f"proj_{suffix}"
    project = root / package
    shutil.copytree(template, project)
    src = project / "src"
    (src / "template_project").rename(src / package)
    for path in [project / "pyproject.toml", *src.rglob("*.py")]:
        path.write_text(path.read_text().replace("template_project", package))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"Template Project"', f'"{name or "Proj " + suffix}"')
    )
    for pipeline, code in PIPELINES.items():
        folder = src / package / "pipelines" / pipeline
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa\n")
        (folder / "pipeline.py").write_text(textwrap.dedent(code))
    (project / "conf" / "base" / "parameters.yml").write_text("start: 3\n")
    if hook:
        with open(src / package / "settings.py", "a") as settings:
            settings.write(HOOK_SETTINGS)
    if prefect_yml is not None:
        (project / "conf" / "base" / "prefect.yml").write_text(textwrap.dedent(prefect_yml))
    return project
