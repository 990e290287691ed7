"""The stand-in's control API: what a test in another process reads of it and tells it, over HTTP.

It lives on the gateway's own port under :data:`PREFIX` (``/_standin/``), which no gateway path starts
with (classic paths start ``/instance``, 1msg's with the instance id). JSON in and out, no token: the
stand-in listens on 127.0.0.1 only, and the server refuses any other client. Control requests are not
recorded, meet no injected fault and no ``delay``; only their connections are counted with the others.

- ``GET /_standin/requests[?endpoint=sendContact]``: ``{"requests": [...]}``, each as received, with
  ``received_at`` (``time.monotonic()`` of the stand-in's process when it arrived: for a test's pacing);
- ``GET /_standin/messages``: ``{"messages": [...]}``, every card accepted, delivered or still queued;
- ``GET /_standin/stats``: requests per endpoint, cards, open connections, connections accepted, ...;
- ``POST /_standin/faults`` ``{"endpoint": "sendContact", "faults": [{"kind": "rate_limited",
  "retry_after": 1}, ...], "times": 1}``: each fault made by the :class:`Fault` factory method of that
  name with the other keys as its arguments, the list made again ``times`` times (each repetition its
  own faults: a ``queued_as_job`` gives each card its own job id);
- ``POST /_standin/reset``: as :meth:`StandInGateway.reset`;
- ``POST /_standin/deliver_queue``: classic: as :meth:`StandInGateway.deliver_queue`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_chatapi.testing._faults import Fault
from airflow_provider_chatapi.testing._records import message_as_json, request_as_json

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_chatapi.testing._records import QueuedMessage, RecordedRequest

__all__ = ["FAULT_KINDS", "PREFIX", "ControlledGateway", "answer"]

PREFIX = "/_standin/"

FAULT_KINDS = tuple(sorted(name for name, value in vars(Fault).items() if isinstance(value, classmethod)))
"""The fault kinds the control API makes: :class:`Fault`'s factory methods, and only those."""


class ControlledGateway(Protocol):
    """What the control API needs of the gateway."""

    dialect: str
    errors: list[str]
    peak_in_flight: int

    @property
    def requests(self) -> list[RecordedRequest]: ...

    @property
    def messages(self) -> list[QueuedMessage]: ...

    @property
    def open_connections(self) -> int: ...

    @property
    def connections_accepted(self) -> int: ...

    def inject(self, *faults: Fault, endpoint: str = "sendContact") -> None: ...

    def reset(self) -> None: ...

    def deliver_queue(self) -> None: ...


Answer = tuple[int, dict[str, Any]]


def answer(gateway: ControlledGateway, method: str, path: str, query: Mapping[str, str], body: Any) -> Answer:
    """The control API's answer to one request: a status and a JSON object."""
    name = path[len(PREFIX) :].strip("/")
    if name not in _ROUTES:
        known = ", ".join(f"{verb} {PREFIX}{route}" for route, (verb, _) in _ROUTES.items())
        return 404, {"error": f"No control endpoint {path}; there are {known}"}
    verb, act = _ROUTES[name]
    if method != verb:
        return 405, {"error": f"{PREFIX}{name} takes {verb}, not {method}"}
    return act(gateway, query, body)


def _requests(gateway: ControlledGateway, query: Mapping[str, str], body: Any) -> Answer:
    endpoint = query.get("endpoint")
    chosen = [r for r in gateway.requests if endpoint is None or r.endpoint == endpoint]
    return 200, {"requests": [request_as_json(request) for request in chosen]}


def _messages(gateway: ControlledGateway, query: Mapping[str, str], body: Any) -> Answer:
    return 200, {"messages": [message_as_json(message) for message in gateway.messages]}


def _stats(gateway: ControlledGateway, query: Mapping[str, str], body: Any) -> Answer:
    messages = gateway.messages
    return 200, {
        "dialect": gateway.dialect,
        "requests": dict(Counter(request.endpoint for request in gateway.requests)),
        "messages": len(messages),
        "queued": sum(not message.delivered for message in messages),
        "open_connections": gateway.open_connections,
        "connections_accepted": gateway.connections_accepted,
        "peak_in_flight": gateway.peak_in_flight,
        "errors": list(gateway.errors),
    }


def _faults(gateway: ControlledGateway, query: Mapping[str, str], body: Any) -> Answer:
    if not isinstance(body, dict) or not isinstance(body.get("faults"), list):
        return 400, {"error": 'Send a JSON object: {"endpoint": "sendContact", "faults": [{"kind": ...}, ...]}'}
    endpoint, times = body.get("endpoint", "sendContact"), body.get("times", 1)
    if not isinstance(endpoint, str) or not endpoint:
        return 400, {"error": "endpoint must be an endpoint name, such as sendContact"}
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        return 400, {"error": f"times must be a whole number of at least 1, got {times!r}"}
    faults = []
    # Each repetition makes its faults again: a factory may draw something per fault (a job id).
    for _ in range(times):
        for index, spec in enumerate(body["faults"]):
            kind = spec.get("kind") if isinstance(spec, dict) else None
            if kind not in FAULT_KINDS:
                known = ", ".join(FAULT_KINDS)
                return 400, {"error": f"faults[{index}]: unknown fault kind {kind!r}; known: {known}"}
            arguments = {key: value for key, value in spec.items() if key != "kind"}
            try:
                faults.append(getattr(Fault, kind)(**arguments))
            except TypeError as error:  # an argument the factory method does not take
                return 400, {"error": f"faults[{index}]: {kind}: {error}"}
    gateway.inject(*faults, endpoint=endpoint)
    return 200, {"endpoint": endpoint, "injected": len(faults)}


def _reset(gateway: ControlledGateway, query: Mapping[str, str], body: Any) -> Answer:
    gateway.reset()
    return 200, {"reset": True}


def _deliver_queue(gateway: ControlledGateway, query: Mapping[str, str], body: Any) -> Answer:
    if gateway.dialect == "1msg":
        return 400, {"error": "1msg has no outbound queue: every accepted card is delivered at once"}
    queued = sum(not message.delivered for message in gateway.messages)
    gateway.deliver_queue()
    return 200, {"delivered": queued}


_ROUTES: dict[str, tuple[str, Callable[[ControlledGateway, Mapping[str, str], Any], Answer]]] = {
    "requests": ("GET", _requests),
    "messages": ("GET", _messages),
    "stats": ("GET", _stats),
    "faults": ("POST", _faults),
    "reset": ("POST", _reset),
    "deliver_queue": ("POST", _deliver_queue),
}
