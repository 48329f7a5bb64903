"""When Prefect runs a deployment: cron, interval or rrule, checked as Prefect checks them."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

from pydantic import Field, field_validator, model_validator

from kedro_prefect_hooks.compat import prefect_cron_problem
from kedro_prefect_hooks.config.base import MAX_INTERVAL_SECONDS, _Model


@functools.cache
def _server_timezones() -> frozenset[str]:
    return frozenset(z for z in zoneinfo.available_timezones() if "localtime" not in z)


class Schedule(_Model):
    """One of cron, interval (seconds) or rrule, in a timezone."""

    cron: str | None = None
    """Cron expression as Prefect reads it (croniter), e.g. "0 6 * * 1-5" or "@daily"."""
    interval: float | None = Field(default=None, gt=0, le=MAX_INTERVAL_SECONDS)
    """Seconds between runs, e.g. 3600 (at most 100 years)."""
    rrule: str | None = None
    """An RFC 5545 recurrence rule, e.g. "FREQ=WEEKLY;BYDAY=MO"."""
    timezone: str = "UTC"
    """IANA time zone the schedule is read in, e.g. "Europe/Paris"."""
    anchor_date: dt.datetime | None = None
    """For `interval` only: when the intervals start, e.g. "2026-01-01T00:00:00"."""
    active: bool = True
    """false keeps the schedule on the deployment but creates no runs."""

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Schedule:
        kinds = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a schedule needs exactly one of `cron`, `interval` (seconds) or `rrule`, "
                f"got {kinds or 'none'}"
            )
        if self.anchor_date is not None and self.interval is None:
            raise ValueError("`anchor_date` applies to `interval` schedules only")
        return self

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and (problem := prefect_cron_problem(value)):
            raise ValueError(
                f"invalid cron expression {value!r}: {problem}; e.g. '0 6 * * *' for 06:00 every day, or '@daily'"
            )
        return value

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, value: str | None) -> str | None:
        if value is not None:
            from dateutil.rrule import rrulestr

            try:
                rrulestr(value, cache=False)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"invalid rrule {value!r} ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        """The names Prefect's server takes: zoneinfo's available ones (not `posixrules`,
        `right/...`, `posix/...` or `localtime`, which zoneinfo alone would open)."""
        if value not in _server_timezones():
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'")
        return value

    def to_api(self) -> dict[str, Any]:
        """The schedule as Prefect's API takes it in `schedules[].schedule`."""
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone}
        if self.rrule is not None:
            return {"rrule": self.rrule, "timezone": self.timezone}
        body: dict[str, Any] = {"interval": self.interval, "timezone": self.timezone}
        if self.anchor_date is not None:
            body["anchor_date"] = self.anchor_date.isoformat()
        return body
