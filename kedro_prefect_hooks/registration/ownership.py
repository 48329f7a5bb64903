"""Who owns a deployment: what stays the same across releases, so a release is never a take-over.

The owner label names the project, the Kedro env and who registers: for a git source the
repository, for a directory source the source itself (the path changes with each image), for
a local source this checkout (host and path). A new commit, branch or image directory keeps the
owner. A second label records the checkout a registration came from, so that a checkout that
switches its own `source:` (local to git, git to local) keeps its deployments too.

Labels written by 0.2.0 named the ref (`git <url>@<ref>`) and the path (`directory <path>`):
they are read as the identity they stand for, so upgrading turns nobody's deployments into clashes.
"""

from __future__ import annotations

import socket
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from kedro_prefect_hooks.config import PrefectConfig
from kedro_prefect_hooks.config.source import CodeSource
from kedro_prefect_hooks.project import KedroProject

MANAGED_TAG = "kedro-prefect-hooks"
OWNER_LABEL = "kedro-prefect-hooks.owner"
CHECKOUT_LABEL = "kedro-prefect-hooks.registered-from"
LEGACY = "legacy"  # registered by 0.1 (no label) for this project and env: taken over once


def ownership_tags(project: KedroProject) -> list[str]:
    """Tags that mark a deployment as this project's and env's, for finding and pruning."""
    return [MANAGED_TAG, f"kedro-project:{project.package}", f"kedro-env:{project.run_env}"]


def checkout(project: KedroProject) -> str:
    """This checkout: host and path."""
    return f"{socket.gethostname()}:{project.path}"


def owner(config: PrefectConfig, project: KedroProject) -> str:
    """Who registers these deployments: project, env, and what stays the same across releases."""
    return f"{_prefix(project)}{registrant(config.source, project)}"


def registrant(source: Literal["local"] | CodeSource, project: KedroProject) -> str:
    if source == "local" or not isinstance(source, CodeSource):
        return f"local {checkout(project)}"
    if source.directory is not None:
        return "directory source"
    assert source.git is not None  # CodeSource holds exactly one
    return f"git repository {repository(source.git.url)}"


def repository(url: str) -> str:
    """A git URL as an identity: no credentials, query or fragment, no trailing `/` or `.git`."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username and not parts.password else "") + host.lower()
        netloc += f":{parts.port}" if parts.port else ""
        url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return url.rstrip("/").removesuffix(".git")


def owner_of(current: dict[str, Any], project: KedroProject) -> str:
    """The owner recorded on a deployment on the server, read as the identity it stands for."""
    labels = current.get("labels") or {}
    if OWNER_LABEL in labels:
        return _identity(str(labels[OWNER_LABEL]))
    if set(ownership_tags(project)) <= set(current.get("tags") or []):
        return LEGACY
    if MANAGED_TAG in (current.get("tags") or []):
        return "another project or env of kedro-prefect-hooks 0.1"
    return "someone else (not registered by kedro-prefect-hooks)"


def is_ours(current: dict[str, Any], ours: str, project: KedroProject) -> bool:
    """Whether this session may write `current`: same owner, a 0.1 deployment of this project and
    env, or one this very checkout registered for this project and env with another `source:`."""
    theirs = owner_of(current, project)
    if theirs in (ours, LEGACY):
        return True
    if not theirs.startswith(_prefix(project)):
        return False  # another project or env: never a release
    registered_from = (current.get("labels") or {}).get(CHECKOUT_LABEL)
    return registered_from == checkout(project) or theirs == f"{_prefix(project)}local {checkout(project)}"


def _prefix(project: KedroProject) -> str:
    return f"project {project.package}, env {project.run_env}, "


def _identity(label: str) -> str:
    """A label of 0.2.0 (`git <url>@<ref>[:<subdirectory>]`, `directory <path>`) as today's identity."""
    parts = label.split(", ", 2)
    if len(parts) != 3:
        return label
    project, env, who = parts
    if who.startswith("directory ") and who != "directory source":
        who = "directory source"
    elif who.startswith("git ") and not who.startswith("git repository "):
        url = who.removeprefix("git ").rpartition("@")[0] or who.removeprefix("git ")
        who = f"git repository {repository(url)}"
    return f"{project}, {env}, {who}"
