"""Airflow's REST API (v2) on loopback, as the drill uses it: a token from the simple auth manager, then JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._token: str | None = None

    def _call(self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = 10) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers, method=method)
        with _NO_PROXY.open(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text else None

    def token(self) -> str:
        """``[core] simple_auth_manager_all_admins = True``: ``GET /auth/token`` hands out an admin's token."""
        if self._token is None:
            self._token = self._call("GET", "/auth/token", auth=False)["access_token"]
        return self._token

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/api/v2/monitor/health", auth=False)

    def all_healthy(self) -> bool:
        health = self.health()
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(part) or {}).get("status") == "healthy" for part in parts)

    def dag_parsed(self, dag_id: str) -> bool:
        try:
            return bool(self.get(f"/api/v2/dags/{dag_id}"))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, run_id: str) -> None:
        self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str = "send") -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def clear(self, dag_id: str, run_id: str, task_ids: list[str], *, only_failed: bool) -> list[str]:
        """``POST clearTaskInstances`` for these tasks of one run (not a dry run): the task ids cleared."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": only_failed}
        answer = self._call("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", body)
        return sorted(ti["task_id"] for ti in answer["task_instances"])

    def fail_run(self, dag_id: str, run_id: str) -> None:
        """Mark a run failed (a scenario that went wrong leaves no run behind to hold up the next)."""
        self._call("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})
