"""Where a flow run finds the project's code (`source:`): this checkout, a directory, or a git clone."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from kedro_prefect_hooks.config.base import _Model

# Prefect's block type slugs and block document names: lowercase letters, digits and dashes.
_BLOCK_NAME = re.compile(r"^[a-z0-9-]+$")
_SECRET_HINT = (
    "the URL holds credentials, which would be stored in the deployment for anyone "
    "to read; put the token in a Prefect Secret block and name it in `access_token_secret`"
)


class GitSource(_Model):
    """A repository that Prefect's own `git_clone` pull step clones for each run."""

    url: str
    """Repository URL, e.g. "https://github.com/acme/spaceflights.git" or "file:///srv/git/project.git"."""
    branch: str | None = None
    """Branch to clone; null: the repository's default branch."""
    commit: str | None = None
    """Commit SHA to check out, e.g. for a release; null: the branch's head."""
    subdirectory: str | None = None
    """Where the Kedro project is inside the repository (its pyproject.toml), e.g. "projects/spaceflights"."""
    credentials: str | None = None
    """A Prefect credentials block, "<block-type>/<name>", e.g. "github-credentials/acme-repo"."""
    access_token_secret: str | None = None
    """The name of a Prefect Secret block holding an access token, e.g. "acme-git-token"."""

    @field_validator("url")
    @classmethod
    def _no_secret_in_url(cls, value: str) -> str:
        """No user info with a password, no user name over http(s), no query or fragment at all:
        a git URL needs none of them, and a token in any of them would be stored in the
        pull step and the owner label."""
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (raises ValueError for a bad port)
        except ValueError:
            raise ValueError(
                "it cannot be parsed as a URL; e.g. https://github.com/acme/project.git"
            ) from None
        if parts.password or (parts.username and parts.scheme in ("http", "https")):
            raise ValueError(_SECRET_HINT)
        if parts.scheme and (parts.query or parts.fragment or "?" in value or "#" in value):
            raise ValueError(f"{_SECRET_HINT} (a git URL has no query string or fragment)")
        if not (
            parts.scheme in ("https", "http", "ssh", "file", "git") or re.match(r"^[\w.-]+@[\w.-]+:", value)
        ):
            raise ValueError(f"{value!r} is not a git URL; e.g. https://github.com/acme/project.git")
        return value

    @field_validator("credentials")
    @classmethod
    def _block_reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        block_type, slash, name = value.partition("/")
        if not slash:
            raise ValueError(
                f"{value!r} is not a block reference; write '<block-type>/<name>', e.g. 'github-credentials/acme-repo'"
            )
        if not (_BLOCK_NAME.match(block_type) and _BLOCK_NAME.match(name)):
            raise ValueError(
                f"{value!r}: Prefect block types and names hold only lowercase letters, digits and "
                "dashes, e.g. 'github-credentials/acme-repo'"
            )
        return value

    @field_validator("access_token_secret")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and not _BLOCK_NAME.match(value):
            raise ValueError(
                f"{value!r}: Prefect Secret block names hold only lowercase letters, digits and dashes, "
                "e.g. 'acme-git-token'"
            )
        return value

    @field_validator("subdirectory")
    @classmethod
    def _inside_the_repository(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normal = posixpath.normpath(value.strip("/"))
        if normal.startswith("..") or posixpath.isabs(value):
            raise ValueError(f"{value!r} must be a path inside the repository, e.g. 'projects/spaceflights'")
        return None if normal == "." else normal

    @model_validator(mode="after")
    def _one_kind_of_credentials(self) -> GitSource:
        if self.credentials and self.access_token_secret:
            raise ValueError("give `credentials` (a block) or `access_token_secret`, not both")
        return self


class CodeSource(_Model):
    """The project at a fixed place where runs execute, or cloned from git: exactly one."""

    directory: str | None = None
    """The project's absolute path on the machine or in the image where runs execute, e.g. "/opt/project"."""
    git: GitSource | None = None
    """Clone this repository for each run; see GitSource."""

    @model_validator(mode="after")
    def _exactly_one(self) -> CodeSource:
        if (self.directory is None) == (self.git is None):
            raise ValueError("give exactly one of `directory` or `git` (or write `source: local`)")
        if self.directory is not None and not posixpath.isabs(self.directory):
            raise ValueError(f"`directory` must be an absolute path, got {self.directory!r}")
        return self
