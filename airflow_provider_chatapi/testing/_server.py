"""The stand-in's HTTP side: a threading HTTP/1.1 server (keep-alive) on loopback, and its request handler.

The handler reads each request into a :class:`RecordedRequest`, hands it to the gateway, and writes the
answer the gateway gives, or resets the connection when it gives none. It knows nothing of endpoints,
faults or the control API: the gateway does. It tells the gateway of each connection it serves, from its
``setup`` to its ``finish``, so that the gateway can count them.
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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

__all__ = ["LOOPBACK", "Answer", "RecordedRequest", "_Server"]

LOOPBACK = "127.0.0.1"

# A status, a body (a mapping goes out as JSON, text or bytes as they are) and headers besides the usual.
Answer = tuple[int, bytes | str | Mapping[str, Any], Mapping[str, str]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it (the token included, as sent).

    ``client_port`` is the client's TCP port: the same port on two requests means the connection was
    reused. ``received_at`` is when it arrived: ``time.monotonic()`` in the stand-in's process, once its
    headers were read. A monotonic clock, not the wall clock a test may set
    (:attr:`StandInGateway.clock_offset`, the package's ``time``), so that a test can check a client's
    pacing: compare two requests' values. (On Linux the monotonic clock is the whole machine's, so another
    process's ``time.monotonic()`` compares too.) 0.0 in a state file written before the stand-in recorded it.
    """

    method: str
    path: str
    endpoint: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any
    client_port: int
    received_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The request as JSON values (the state file, the control API); its body as text, any bytes kept."""
        return {**vars(self), "body": self.body.decode("utf-8", "surrogateescape")}


class Gateway(Protocol):
    """What the server needs of the gateway it serves (the gateway imports the server, not the reverse)."""

    date_header: bool
    errors: list[str]

    def now(self) -> float: ...

    def _serve(self, request: RecordedRequest) -> Answer | None: ...

    def _opened(self, connection: socket.socket) -> None: ...

    def _closed(self, connection: socket.socket) -> None: ...


class _Server(ThreadingHTTPServer):
    # Daemon handler threads, which the server does not join on close: a client's kept-alive connection
    # cannot hold up stop() (which also closes such connections).
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 resets connections when a client opens many at once

    def __init__(self, gateway: Gateway, port: int) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.gateway = gateway

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout) breaks the pipe, which is the point of the exercise; any
        other error is the stand-in's own, and is recorded and shown rather than swallowed."""
        error = sys.exc_info()[1]
        if not isinstance(error, (BrokenPipeError, ConnectionResetError)):
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
        self.server.gateway._opened(self.connection)

    def finish(self) -> None:
        # The handler finishes once the connection is done: the client closed it (its read saw the end),
        # it asked for ``Connection: close``, or the stand-in reset or hung up on it. The server closes
        # the socket right after.
        try:
            super().finish()
        finally:
            self.server.gateway._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default access log would print every URL, token included."""

    def _handle(self) -> None:
        received_at = time.monotonic()  # the headers are read; the body may take longer to come
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        url = urlsplit(self.path)
        endpoint, query = url.path.rstrip("/").rpartition("/")[2], dict(parse_qsl(url.query))
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = RecordedRequest(
            self.command, url.path, endpoint, query, headers, body, parsed, self.client_address[1], received_at
        )
        answer = self.server.gateway._serve(request)
        if answer is None:
            # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        status, content, extra = answer
        if isinstance(content, Mapping):
            data, content_type = json.dumps(content).encode(), "application/json"
        else:
            data, content_type = (content.encode() if isinstance(content, str) else content), "text/plain"
        self.send_response(status)
        for name, value in {"Content-Type": content_type, **extra, "Content-Length": str(len(data))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _handle

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, on the gateway's clock (which a test may set apart from the client's)."""
        return email.utils.formatdate(self.server.gateway.now() if timestamp is None else timestamp, usegmt=True)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() != "date" or self.server.gateway.date_header:
            super().send_header(keyword, value)
