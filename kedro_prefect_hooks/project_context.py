"""One entry's view of the project, built once: a Kedro session (the hook), a `kedro prefect`
command, or a flow run.

Each entry used to derive the project, its env and its config by itself (a flow run built
three config loaders, a command loaded the pipeline registry twice). Now it builds one
ProjectContext and hands it down: path, env and config loader at once; the prefect config,
the project's description and the pipeline registry on first use, then kept.

Which Prefect API is not here: it depends on this project's local server (`local/`, a layer
up), so the hook and `cli_support.api_of` ask `prefect_api.find_api` with the context's config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.config.loader import load_config
from kedro_prefect_hooks.project import (
    FoundPipelines,
    KedroProject,
    cached_pipelines,
    describe_project,
    has_pipeline_cache,
    loader_catalog,
    pipeline_parameters,
    project_config_loader,
    reads_like_a_command,
    registered_pipelines,
    session_env,
)


@dataclass
class ProjectContext:
    path: Path
    env: str | None  # the session's env: as given, else KEDRO_ENV; None is Kedro's default run env
    loader: Any  # the session's config loader, or one built as a session would build it
    _found: FoundPipelines | None = field(default=None, repr=False)

    @classmethod
    def of_session(cls, context: Any) -> ProjectContext:
        """A Kedro session's: its env and config loader (runtime params included) as they are."""
        return cls(Path(context.project_path).resolve(), context.env, context.config_loader)

    @classmethod
    def of_project(
        cls, project_path: Path | str, env: str | None, runtime_params: dict | None = None
    ) -> ProjectContext:
        """A bootstrapped project's, without a session (so no hook fires): Kedro's env rule."""
        env = session_env(env)
        return cls(
            Path(project_path).resolve(), env, project_config_loader(Path(project_path), env, runtime_params)
        )

    @cached_property
    def config(self) -> PrefectConfig | None:
        """The prefect config; None without prefect.yml. A bad file raises ConfigError."""
        return load_config(self.loader)

    @property
    def settings(self) -> PrefectConfig:
        """The prefect config, or the defaults without prefect.yml (a worker serves the default pool)."""
        return self.config or PrefectConfig()

    @cached_property
    def project(self) -> KedroProject:
        return describe_project(self.path, self.env, self.loader)

    @property
    def env_in_force(self) -> tuple[str, bool]:
        """(the env the config is read from, whether it is the project's default run env)."""
        return self.project.run_env, self.env is None

    def pipelines(self, use_cache: bool = False, wanted: Iterable[str] = ()) -> FoundPipelines:
        """The project's pipelines (project.registered_pipelines), loaded once per entry."""
        if self._found is None:
            self._found = registered_pipelines(self.project, use_cache=use_cache, wanted=wanted)
        return self._found

    def selected_pipelines(self) -> list[str]:
        """The selected pipelines that loaded. When a pipeline module failed to import (Kedro's
        `find_pipelines` skips it with a warning), a pipeline prefect.yml names but that did not
        load is left out, not an error: it was skipped, not removed, so nothing is pruned either."""
        found, config = self.pipelines(), self.settings
        if not found.problems:
            return config.selected_pipelines(found.names)
        return [p for p in config.selected_pipelines(found.names, missing_ok=True) if p in found.names]

    @property
    def may_prune(self) -> bool:
        return self.settings.prune and not self.pipelines().problems

    def load_problems(self) -> str | None:
        """What to say when some pipelines did not load, or None."""
        if not (problems := self.pipelines().problems):
            return None
        pruned = ", nothing pruned" if self.settings.prune else ""
        return f"registering only what loaded{pruned}; the pipeline registry reported: {' / '.join(problems)}"

    def can_register_later(self, wanted: Iterable[str] = ()) -> bool:
        """Whether a background `kedro prefect register` should load the registry for this entry:
        it was loaded here before, something it read changed since (or `wanted` names a pipeline
        it lacked), and that command reads the config this entry reads. A current cache is kept."""
        if self._found is None:
            self._found = cached_pipelines(self.project, wanted)
        return (
            self._found is None
            and has_pipeline_cache(self.project)
            and reads_like_a_command(self.loader, self.path)
        )

    def catalog(self) -> Any:
        """The catalog this env's files make (datasets stay lazy, no hooks fire)."""
        return loader_catalog(self.loader)

    def parameters(self, pipelines: list[str]) -> dict[str, dict]:
        """Each pipeline's parameters as parameters.yml has them (the run form's defaults): not a
        `kedro run --params` override of this session."""
        loader = self.loader
        if getattr(loader, "runtime_params", None):
            loader = project_config_loader(self.path, self.env)
        return pipeline_parameters(self.pipelines(), loader, pipelines)
