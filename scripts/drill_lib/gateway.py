"""The stand-in gateways, each a process of its own (``python -m airflow_provider_chatapi.testing``) on a fixed
loopback port with ``--state``, so that a scenario can SIGKILL one and start it again on the same port with
the cards it had accepted; the drill reads and scripts them through their control API (``/_standin/``)."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from drill_lib.services import DrillError, free_port, wait_for

if TYPE_CHECKING:
    from drill_lib.services import Services

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_CONNECTION_LINE = "AIRFLOW_CONN_CHATAPI_DEFAULT='"


class Gateway:
    """One stand-in process: ``start()``, ``kill()``, ``restart()``, and its control API."""

    def __init__(self, services: Services, dialect: str, delay: float) -> None:
        self.services = services
        self.dialect = dialect
        self.delay = delay
        self.port = free_port()
        self.name = f"standin-{dialect}"
        self.state = services.root / f"{self.name}.json"
        self.connection_json = ""

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_standin/"

    def start(self) -> float:
        """Start the process (loading its state file, if any) and wait until its control API answers."""
        started = time.monotonic()
        log = self.services.log(self.name)
        command = [sys.executable, "-m", "airflow_provider_chatapi.testing", "--dialect", self.dialect]
        command += ["--port", str(self.port), "--state", str(self.state), "--delay", str(self.delay)]
        self.services.start(self.name, command, log=log, env=self.services.plain_env())
        wait_for(f"stand-in {self.dialect} on 127.0.0.1:{self.port} (GET /_standin/stats)", self._ready, 30, log)
        line = next(line for line in log.read_text().splitlines()[::-1] if line.startswith(_CONNECTION_LINE))
        self.connection_json = line[len(_CONNECTION_LINE) : -1]
        return time.monotonic() - started

    def _ready(self) -> bool:
        self.services.check_alive(self.name)
        return bool(self.stats())

    def kill(self) -> list[int]:
        """SIGKILL the stand-in (and its session): the pids killed."""
        return self.services.kill_tree(self.name)

    # ---- the control API ----------------------------------------------------------------------------

    def _call(self, method: str, name: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.control_url + name, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with _NO_PROXY.open(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint, cards accepted, the stand-in's own errors."""
        return self._call("GET", "stats")

    def cards(self) -> int:
        return int(self.stats()["messages"])

    def messages(self) -> list[dict[str, Any]]:
        """Every card accepted, in order: ``chat_id``, ``id``, ``time``, ``message_number``, ..."""
        return self._call("GET", "messages")["messages"]

    def inject(self, faults: list[dict[str, Any]], times: int = 1) -> int:
        """Answer the next ``sendContact`` requests with these faults (``{"kind": ..., arguments}``), in order."""
        answer = self._call("POST", "faults", {"endpoint": "sendContact", "faults": faults, "times": times})
        if answer.get("injected") != len(faults) * times:
            raise DrillError(f"stand-in {self.dialect}: POST /_standin/faults answered {answer}")
        return answer["injected"]

    def reset(self) -> None:
        """Forget requests, cards and pending faults (its state file too)."""
        self._call("POST", "reset", {})
