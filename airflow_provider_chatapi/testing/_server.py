"""The stand-in's HTTP side: a threading HTTP/1.1 server (keep-alive) and its request handler.

The handler turns each request into a :class:`RecordedRequest`, lets the gateway act on it, and answers
it (or drops the connection) as the gateway or an injected fault says. Each connection it serves is
counted open from its handler's ``setup`` to its ``finish``.
"""

from __future__ import annotations

import email.utils
import json
import socket
import struct
import sys
import time
import traceback
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_chatapi.testing import _control
from airflow_provider_chatapi.testing._records import RecordedRequest

if TYPE_CHECKING:
    from airflow_provider_chatapi.testing._connections import Connections
    from airflow_provider_chatapi.testing._faults import Fault


class StandInGateway(_control.ControlledGateway, Protocol):
    """What the server needs of the gateway it serves (the gateway imports the server, not the reverse)."""

    delay: float
    date_header: bool
    errors: list[str]
    _connections: Connections

    def now(self) -> float: ...

    def _record(self, request: RecordedRequest) -> Fault | None: ...

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]: ...

    def _done(self) -> None: ...


class _Server(ThreadingHTTPServer):
    # Daemon handler threads, which the server does not join on close: a client's kept-alive connection
    # cannot hold up stop() (which also closes such connections).
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 resets connections when a client opens many at once
    gateway: StandInGateway

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout) breaks the pipe, which is the point of the exercise; any
        other error is the stand-in's own, and is recorded and shown rather than swallowed."""
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError)):
            return
        self.gateway.errors.append(repr(error))
        traceback.print_exc(file=sys.stderr)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that clients can reuse their connection
    # Headers and body go out in two writes; with Nagle's algorithm the body would wait ~40 ms for the
    # client's delayed ACK on every kept-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.gateway._connections.opened(self.connection)

    def finish(self) -> None:
        # The handler finishes once the connection is done: the client closed it (its read saw the end),
        # it asked for ``Connection: close``, or the stand-in reset or hung up on it. The server closes
        # the socket right after.
        try:
            super().finish()
        finally:
            self.server.gateway._connections.closed(self.connection)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default access log would print every URL, token included."""

    def _handle(self) -> None:
        received_at = time.monotonic()  # the headers are read; the body may take longer to come
        gateway = self.server.gateway
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed_json = json.loads(raw) if raw else None
        except ValueError:
            parsed_json = None
        url = urlsplit(self.path)
        if url.path.startswith(_control.PREFIX):  # not recorded, faulted nor delayed
            if not self.client_address[0].startswith("127."):  # the server binds loopback only: never so
                self._reply(403, {"error": "The control API answers loopback clients only"}, {})
                return
            answer = _control.answer(gateway, self.command, url.path, dict(parse_qsl(url.query)), parsed_json)
            self._reply(*answer, {})
            return
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            endpoint=url.path.rstrip("/").rpartition("/")[2],
            query=dict(parse_qsl(url.query)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=raw,
            json=parsed_json,
            client_port=self.client_address[1],
            received_at=received_at,
        )
        fault = gateway._record(request)
        try:
            self._act(gateway, request, fault)
        finally:
            gateway._done()

    def _act(self, gateway: StandInGateway, request: RecordedRequest, fault: Fault | None) -> None:
        # The gateway acts on a request as it arrives; only its answer is late (or never comes).
        if fault is None or fault.status is None:
            status, body = gateway._answer(request)
            if fault is not None:
                status, body = fault.decorate(status, body)
            answer: tuple[int, Any, Mapping[str, str]] | None = (status, body, {})
        else:
            if fault.queue:
                gateway._answer(request)
            answer = None if fault.reset else (fault.status, fault.body, fault.headers)
        delay = gateway.delay + (fault.delay if fault else 0.0)
        if delay:
            time.sleep(delay)
        if answer is None:
            self._reset()
        else:
            self._reply(*answer)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, on the gateway's clock (which a test may set apart from the client's)."""
        return email.utils.formatdate(self.server.gateway.now() if timestamp is None else timestamp, usegmt=True)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "date" and not self.server.gateway.date_header:
            return
        super().send_header(keyword, value)

    def _reply(self, status: int, body: bytes | str | Mapping[str, Any], headers: Mapping[str, str]) -> None:
        if isinstance(body, Mapping):
            data, content_type = json.dumps(body).encode(), "application/json"
        else:
            data, content_type = (body.encode() if isinstance(body, str) else body), "text/plain"
        self.send_response(status)
        sent_headers = {"Content-Type": content_type, **headers, "Content-Length": str(len(data))}
        for name, value in sent_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()
