"""What every failure to use the Prefect API becomes: a session turns each into one warning."""

from __future__ import annotations


class PrefectApiError(RuntimeError):
    """The Prefect API could not be reached, refused a request, or cannot be used as configured."""


class PrefectUnavailable(PrefectApiError):
    """prefect cannot be imported here (a broken or incompatible install): handled like an API error."""


class OutOfTime(PrefectApiError):
    """The conversation's budget is spent: the server answers too slowly (or keeps asking to retry)."""


class ApiRefused(PrefectApiError):
    """The server answered a request with an error status (e.g. 422: it refused the body)."""

    def __init__(self, message: str, status: int, detail: str):
        super().__init__(message)
        self.status = status
        self.detail = detail
