"""Airflow's REST API on loopback, as the drill uses it: v2 (Airflow 3, a token from the simple auth manager)
or v1 (Airflow 2, basic auth), then JSON. The paths and bodies the drill uses are the same in both but for
the prefix; :class:`Api` takes both from the release."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from drill_lib.releases import API_USER

if TYPE_CHECKING:
    from drill_lib.releases import Release

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Api:
    def __init__(self, base_url: str, release: Release, password: str = "") -> None:
        self.base_url = base_url
        self.release = release
        self.prefix = release.api_prefix
        self.password = password
        self._token: str | None = None

    def _call(self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = 10) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = self.authorization()
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers, method=method)
        with _NO_PROXY.open(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text else None

    def authorization(self) -> str:
        """v2: ``[core] simple_auth_manager_all_admins = True``, so ``GET /auth/token`` hands out an admin's
        token; v1: basic auth (``[api] auth_backends``) as the user the release created."""
        if self.release.api_auth == "basic":
            return "Basic " + base64.b64encode(f"{API_USER}:{self.password}".encode()).decode()
        if self._token is None:
            self._token = self._call("GET", "/auth/token", auth=False)["access_token"]
        return f"Bearer {self._token}"

    def get(self, path: str) -> Any:
        return self._call("GET", f"{self.prefix}{path}")

    def health(self) -> dict[str, Any]:
        return self._call("GET", self.release.health_path, auth=False)

    def healthy(self, part: str) -> bool:
        return (self.health().get(part) or {}).get("status") == "healthy"

    def dag_parsed(self, dag_id: str) -> bool:
        try:
            return bool(self.get(f"/dags/{dag_id}"))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"{self.prefix}/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, run_id: str) -> None:
        body = {"dag_run_id": run_id, **self.release.trigger_fields}
        self._call("POST", f"{self.prefix}/dags/{dag_id}/dagRuns", body)

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str = "send") -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def clear(self, dag_id: str, run_id: str, task_ids: list[str], *, only_failed: bool) -> list[str]:
        """``POST clearTaskInstances`` for these tasks of one run (not a dry run): the task ids cleared."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": only_failed}
        answer = self._call("POST", f"{self.prefix}/dags/{dag_id}/clearTaskInstances", body)
        return sorted(ti["task_id"] for ti in answer["task_instances"])

    def fail_run(self, dag_id: str, run_id: str) -> None:
        """Mark a run failed (a scenario that went wrong leaves no run behind to hold up the next)."""
        self._call("PATCH", f"{self.prefix}/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})

    def set_variable(self, key: str, value: str) -> None:
        """Create or overwrite a Variable (``PATCH``, or ``POST`` when there is none yet)."""
        try:
            self._call("PATCH", f"{self.prefix}/variables/{key}", {"key": key, "value": value})
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            self._call("POST", f"{self.prefix}/variables", {"key": key, "value": value})
