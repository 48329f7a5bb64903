"""Talking to the Prefect REST API with the standard library.

Why not Prefect's client: importing prefect costs ~1-2 s on every Kedro session,
its client retries for seconds when the API is down, and its sync calls turn into
coroutines when an event loop already runs (Jupyter). Why not httpx: importing it
and building its client costs ~0.1 s per session (measured), most of the hook's
budget. A blocking urllib request with a short timeout has none of these costs.

Every exchange (name lookup, connect, headers, body) ends within `timeout`
seconds, whatever the server does; every answer that is not the JSON the API
sends is an error like an unreachable server. With a `budget`, the whole
conversation (retries included) may wait at most that many seconds more than a
healthy server would take: past it, OutOfTime, and the caller says what it did.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from kedro_prefect_hooks.prefect_api.errors import ApiRefused, OutOfTime, PrefectApiError
from kedro_prefect_hooks.prefect_api.settings import ApiSettings

PAGE_SIZE = 200
# The server answers these when asked to retry (e.g. SQLite busy under load); a
# server that answers is alive, so a few short waits cost little.
RETRY_STATUSES = (429, 502, 503)
RETRY_WAITS = (0.2, 0.5, 1.0, 2.0)
# What one answer of a healthy server takes at most, on a busy machine too (measured: a
# local server on SQLite answers a deployment upsert in 0.07 s, at most 0.16 s, on this
# shared 2-core machine; ten sessions at once on 2 cores made some answers take several
# times that); only time beyond it counts against a budget.
HEALTHY_ANSWER_SECONDS = 0.5


def path(*segments: str) -> str:
    """An API path with each segment quoted: names like "my pool" or "café" are valid in Prefect."""
    return "/" + "/".join(quote(str(segment), safe="") for segment in segments)


COMMAND_ANSWER_SECONDS = 10.0


def command_client(settings: ApiSettings, timeout: float) -> PrefectApi:
    """The client of a command the user ran to talk to Prefect (`register`, `list`, `run`, `worker`):
    an answer may take up to 10 s (or `timeout:` if longer). A session's hook keeps `timeout:`, so
    that a slow API never stalls a Kedro command; a command asked for the API and may wait for it."""
    return PrefectApi(settings, max(timeout, COMMAND_ANSWER_SECONDS))


class PrefectApi:
    """The few API calls the plugin needs; every failure becomes a PrefectApiError."""

    def __init__(self, settings: ApiSettings, timeout: float, budget: float | None = None):
        self.settings = settings
        self.timeout = timeout
        self.budget = budget
        self.late = 0.0  # seconds spent beyond healthy answers, retry waits included
        self._headers = {
            **settings.headers,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _request(self, method: str, api_path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body); 404 and 409 are returned, other errors raised."""
        request = urllib.request.Request(
            self.settings.url + api_path,
            data=None if body is None else json.dumps(body).encode(),
            headers=self._headers,
            method=method,
        )
        for wait in (*RETRY_WAITS, None):
            status, raw, content_type = self._exchange(request)
            if status not in RETRY_STATUSES or wait is None:
                break
            if self.budget is not None and self.late + wait > self.budget:
                raise self._out_of_time(
                    f"{method} {api_path} answered {status} ({_detail(_decode(raw), raw)})"
                )
            self.late += wait
            time.sleep(wait)
        payload = _decode(raw)
        if status >= 400 and status not in (404, 409):
            raise self._refused(
                method, api_path, status, _detail(None if payload is NOT_JSON else payload, raw)
            )
        if payload is NOT_JSON:
            raise self._error(
                f"{method} {api_path} answered {status} with {content_type or 'a body'} that is not "
                "JSON: is this a Prefect API, or a proxy or login page in front of it?" + self._api_hint()
            )
        return status, payload

    def _api_hint(self) -> str:
        """A URL that lacks the API's path gets 404s or the UI's pages: say what it should look like."""
        if self.settings.url.endswith("/api") or "/api/" in self.settings.url:
            return ""
        return f" A Prefect API URL ends in /api, e.g. {self.settings.url}/api"

    def _exchange(self, request: urllib.request.Request) -> tuple[int, bytes, str]:
        """One HTTP exchange that ends within `timeout` seconds, however slowly the server answers.

        Socket timeouts bound each read, not the whole answer (a server sending a
        byte a second never trips them), so the exchange runs in a daemon thread
        that is abandoned at the deadline.
        """
        limit = self.timeout
        if self.budget is not None:
            if self.late >= self.budget:
                raise self._out_of_time("no time left for the next request")
            limit = min(limit, self.budget - self.late + HEALTHY_ANSWER_SECONDS)
        outcome: dict[str, Any] = {}

        def exchange() -> None:
            try:
                outcome["answer"] = _status_body_type(request, limit)
            except BaseException as exc:  # reported in the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=exchange, name="kedro-prefect-hooks-request", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(limit)
        self.late += max(0.0, time.monotonic() - started - HEALTHY_ANSWER_SECONDS)
        if worker.is_alive() or ("error" in outcome and _is_timeout(outcome["error"])):
            if limit < self.timeout:
                raise self._out_of_time(f"{request.get_method()} unanswered after {limit:.1f} s")
            raise self._error(f"no complete answer within {self.timeout:g} s")
        if "error" in outcome:
            exc = outcome["error"]
            if isinstance(exc, urllib.error.URLError):
                raise self._error(f"cannot connect ({exc.reason})") from None
            # a reset connection, an answer that is not HTTP, a bad URL...
            if isinstance(exc, (OSError, ValueError, http.client.HTTPException)):
                raise self._error(f"connection failed ({exc})") from None
            raise exc
        return outcome["answer"]

    def _refused(self, method: str, api_path: str, status: int, detail: str) -> ApiRefused:
        hint = self._api_hint() if status == 404 else ""
        return ApiRefused(
            f"Prefect API at {self.settings.url} ({self.settings.source}): {method} {api_path} answered {status}: {detail}{hint}",
            status,
            f"{status}: {detail}",
        )

    def _out_of_time(self, last: str) -> OutOfTime:
        return OutOfTime(
            f"the Prefect API at {self.settings.url} answers too slowly ({last}; {self.late:.1f} s "
            f"beyond healthy answers, `timeout: {self.budget:g}`)"
        )

    def _error(self, cause: str) -> PrefectApiError:
        return PrefectApiError(f"Prefect API at {self.settings.url} ({self.settings.source}): {cause}")

    def _json(self, method: str, api_path: str, body: Any = None, expect: type = dict) -> Any:
        """The answer's JSON, which must be of type `expect`: an error answer or another shape is an error."""
        status, payload = self._request(method, api_path, body)
        return self._checked(method, api_path, status, payload, expect)

    def _checked(self, method: str, api_path: str, status: int, payload: Any, expect: type) -> Any:
        if status >= 400:
            raise self._refused(method, api_path, status, _detail(payload, b""))
        shaped = isinstance(payload, expect) and not isinstance(payload, bool)
        if shaped and expect is dict:
            shaped = "id" in payload  # every object the plugin reads (flow, deployment, run) has one
        if shaped and expect is list:
            shaped = all(isinstance(item, dict) for item in payload)
        if not shaped:
            raise self._error(
                f"{method} {api_path} answered {status} with {_detail(payload, b'')!r}, not the "
                f"{expect.__name__} the Prefect API sends: is this a Prefect API?"
            )
        return payload

    def _all_pages(self, what: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self._json(
                "POST", f"/{what}/filter", {**body, "limit": PAGE_SIZE, "offset": len(found)}, expect=list
            )
            found.extend(page)
            if len(page) < PAGE_SIZE:
                return found

    def deployments_tagged(self, tags: list[str]) -> list[dict[str, Any]]:
        """Every deployment carrying all `tags`."""
        return self._all_pages("deployments", {"deployments": {"tags": {"all_": tags}}})

    def deployments_named(
        self, flow_names: list[str], names: list[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The deployments among `flow_names` x `names`, by (flow name, deployment name): two requests."""
        flows = self._all_pages("flows", {"flows": {"name": {"any_": flow_names}}})
        flow_names_by_id = {flow["id"]: flow["name"] for flow in flows}
        found = self._all_pages(
            "deployments", {"flows": {"name": {"any_": flow_names}}, "deployments": {"name": {"any_": names}}}
        )
        return {(flow_names_by_id.get(d["flow_id"], "?"), d["name"]): d for d in found}

    def count_deployments(
        self, tags: list[str], flow_names: list[str] | None = None, names: list[str] | None = None
    ) -> int:
        """How many deployments carry all `tags` (and are among `flow_names` x `names`): one cheap request."""
        body: dict[str, Any] = {"deployments": {"tags": {"all_": tags}}}
        if names is not None:
            body["deployments"]["name"] = {"any_": names}
        if flow_names is not None:
            body["flows"] = {"name": {"any_": flow_names}}
        return self._json("POST", "/deployments/count", body, expect=int)

    def variable(self, name: str) -> Any:
        """The value of Prefect variable `name`; None when there is none."""
        status, payload = self._request("GET", api_path := path("variables", "name", name))
        return None if status == 404 else self._checked("GET", api_path, status, payload, dict).get("value")

    def set_variable(self, name: str, value: Any, tags: list[str]) -> None:
        """Create or update Prefect variable `name`."""
        status, _ = self._request("PATCH", path("variables", "name", name), {"value": value, "tags": tags})
        if status == 404:
            status, _ = self._request("POST", "/variables/", {"name": name, "value": value, "tags": tags})
            if status == 409:  # another session created it meanwhile
                self._request("PATCH", path("variables", "name", name), {"value": value, "tags": tags})

    def tag_limit(self, tag: str) -> int | None:
        """Prefect's concurrency limit on task runs tagged `tag`; None when there is none."""
        status, payload = self._request("GET", api_path := path("concurrency_limits", "tag", tag))
        return (
            None
            if status == 404
            else self._checked("GET", api_path, status, payload, dict)["concurrency_limit"]
        )

    def set_tag_limit(self, tag: str, limit: int) -> None:
        """Create or change the limit on task runs tagged `tag` (the API upserts)."""
        self._json("POST", "/concurrency_limits/", {"tag": tag, "concurrency_limit": limit})

    def delete_tag_limit(self, tag: str) -> None:
        self._request("DELETE", path("concurrency_limits", "tag", tag))

    def work_pool(self, name: str) -> dict[str, Any] | None:
        """Work pool `name` with its type and base job template; None when there is none."""
        status, payload = self._request("GET", api_path := path("work_pools", name))
        return None if status == 404 else self._checked("GET", api_path, status, payload, dict)

    def create_process_pool(self, name: str, base_job_template: dict[str, Any]) -> bool:
        """Create a process pool `name`; False when another session created it first."""
        status, _ = self._request(
            "POST", "/work_pools/", {"name": name, "type": "process", "base_job_template": base_job_template}
        )
        return status != 409

    def automations_named(self, name: str) -> list[dict[str, Any]]:
        return self._json(
            "POST", "/automations/filter", {"automations": {"name": {"any_": [name]}}}, expect=list
        )

    def replace_automation(self, automation_id: str, body: dict[str, Any]) -> None:
        """PUT: the automation becomes `body` entirely (trigger, actions, description)."""
        self._request("PUT", path("automations", automation_id), body)

    def automations_tagged(self, tags: list[str]) -> list[dict[str, Any]]:
        """Every automation carrying all `tags`."""
        return self._all_pages("automations", {"automations": {"tags": {"all_": tags}}})

    def create_automation(self, body: dict[str, Any]) -> None:
        self._json("POST", "/automations/", body)

    def delete_automation(self, automation_id: str) -> None:
        self._request("DELETE", path("automations", automation_id))

    def delete_automations_owned_by(self, resource_id: str) -> None:
        """What a deployment's own automations become when it is deleted: gone (Prefect keeps them)."""
        self._request("DELETE", path("automations", "owned-by", resource_id))

    def ensure_flow(self, name: str) -> str:
        """The id of flow `name`; the API creates it or returns the existing one."""
        return self._json("POST", "/flows/", {"name": name})["id"]

    def upsert_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or fully replace the deployment named by (flow_id, name)."""
        return self._json("POST", "/deployments/", body)

    def delete_deployment(self, deployment_id: str) -> None:
        self._request("DELETE", path("deployments", deployment_id))

    def deployment_by_name(self, flow: str, name: str) -> dict[str, Any] | None:
        status, payload = self._request("GET", api_path := path("deployments", "name", flow, name))
        return None if status == 404 else self._checked("GET", api_path, status, payload, dict)

    def flow_name(self, flow_id: str) -> str:
        return self._json("GET", path("flows", flow_id))["name"]

    def create_flow_run(
        self, deployment_id: str, parameters: dict[str, Any], job_variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """What `prefect deployment run` does: a flow run scheduled now, for a worker to pick up."""
        body: dict[str, Any] = {"parameters": parameters}
        if job_variables:
            body["job_variables"] = job_variables
        return self._json("POST", path("deployments", deployment_id, "create_flow_run"), body)

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return self._json("GET", path("flow_runs", flow_run_id))

    def last_flow_run(self, deployment_id: str) -> dict[str, Any] | None:
        runs = self._json(
            "POST",
            "/flow_runs/filter",
            {
                "deployments": {"id": {"any_": [deployment_id]}},
                "sort": "EXPECTED_START_TIME_DESC",
                "limit": 1,
            },
            expect=list,
        )
        return runs[0] if runs else None

    def waiting_subflow_pools(self, flow_run_id: str) -> list[str]:
        """The work pools of this run's subflow runs that still wait for a worker (SCHEDULED)."""
        runs = {"parent_flow_run_id": {"any_": [flow_run_id]}, "state": {"type": {"any_": ["SCHEDULED"]}}}
        found = self._json("POST", "/flow_runs/filter", {"flow_runs": runs}, expect=list)
        return sorted({run["work_pool_name"] for run in found if run.get("work_pool_name")})

    def count_task_runs(self, flow_run_id: str, state_types: list[str]) -> int:
        """How many of the flow run's task runs are in one of `state_types`: one request, no page limit."""
        return self._json("POST", "/task_runs/count", _task_runs_body(flow_run_id, state_types), expect=int)

    def task_runs(self, flow_run_id: str, state_types: list[str]) -> list[dict[str, Any]]:
        """The flow run's task runs in one of `state_types`, every page."""
        return self._all_pages("task_runs", _task_runs_body(flow_run_id, state_types))

    def latest_artifact(self, flow_run_id: str, key: str) -> dict[str, Any] | None:
        """The flow run's newest artifact with `key` (a retried run has one per attempt), if any."""
        body = {
            "artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}},
            "sort": "CREATED_DESC",
            "limit": 1,
        }
        found = self._json("POST", "/artifacts/filter", body, expect=list)
        return found[0] if found else None

    def pool_workers(self, pool: str) -> list[dict[str, Any]]:
        """The workers Prefect knows for `pool`, with status and last heartbeat; [] for no pool."""
        status, payload = self._request("POST", api_path := path("work_pools", pool, "workers", "filter"), {})
        return [] if status == 404 else self._checked("POST", api_path, status, payload, list)

    def forget_worker(self, pool: str, name: str) -> None:
        """Drop a stopped worker from the pool's list, which shows it ONLINE until 3 heartbeats are missed."""
        self._request("DELETE", path("work_pools", pool, "workers", name))


def _task_runs_body(flow_run_id: str, state_types: list[str]) -> dict[str, Any]:
    """The run's own task runs in these states, not the placeholder task run of each subflow run."""
    return {
        "flow_runs": {"id": {"any_": [flow_run_id]}},
        "task_runs": {"state": {"type": {"any_": state_types}}, "subflow_runs": {"exists_": False}},
    }


def _is_timeout(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, (TimeoutError, socket.timeout))


NOT_JSON = object()


def _decode(raw: bytes) -> Any:
    """The body's JSON (None for no body, or for JSON null); NOT_JSON when it is something else."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return NOT_JSON


def _detail(payload: Any, raw: bytes) -> str:
    detail = payload.get("detail") or payload if isinstance(payload, dict) else raw.decode(errors="replace")
    return re.sub(r"\s+", " ", str(detail))[:300]


def _status_body_type(request: urllib.request.Request, timeout: float) -> tuple[int, bytes, str]:
    """One request's status, body and content type; an error status is an answer too."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get_content_type()
