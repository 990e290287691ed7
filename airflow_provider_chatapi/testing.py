"""A stand-in Chat API gateway on loopback, for demos, this project's tests and your own DAG tests.

It is a real HTTP server on 127.0.0.1 that speaks either dialect: the classic protocol
(``/instance{ID}/``: ``sendContact`` with contact ids, ``status``, ``showMessagesQueue``, ``messages``) or
1msg's (``/{ID}/``: ``sendContact`` with full contact cards, ``status``, ``messages``; no queue listing).
It checks what it receives the way that gateway does, records every request, and can be told to answer
the next requests with any failure the real gateway shows::

    from airflow_provider_chatapi.testing import Fault, StandInGateway

    with StandInGateway() as gateway:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
        gateway.inject(Fault.rate_limited(retry_after=1))
        dag.test()
        assert [m.contact_ids for m in gateway.messages] == [("79001111111@c.us",)]

Run it by hand with ``python -m airflow_provider_chatapi.testing --port 8080 [--dialect 1msg]``.

It imports nothing but the standard library and never listens beyond loopback. Its checks of what it
receives (:mod:`airflow_provider_chatapi._stand_in_checks`) are written independently of
:mod:`airflow_provider_chatapi.protocol`, so that a bug there cannot hide itself.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_chatapi._stand_in_checks import check_classic_send, check_onemsg_send

__all__ = [
    "DEFAULT_INSTANCE_ID",
    "DEFAULT_TOKEN",
    "DIALECTS",
    "LOOPBACK",
    "Fault",
    "QueuedMessage",
    "RecordedRequest",
    "StandInGateway",
]

LOOPBACK = "127.0.0.1"
DEFAULT_TOKEN = "standin-token-4c7f2a9e"
DEFAULT_INSTANCE_ID = "123456"

DIALECTS = ("chatapi", "1msg")
"""The protocols the stand-in speaks: the classic Chat API, and 1msg's."""

WRONG_TOKEN = "Wrong token. Please provide token as a GET parameter."
_ENDPOINTS = {
    "chatapi": {("POST", "sendContact"), ("GET", "status"), ("GET", "showMessagesQueue"), ("GET", "messages")},
    "1msg": {("POST", "sendContact"), ("GET", "status"), ("GET", "messages")},
}


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of the normal answer.

    With no ``status`` the request is handled normally (and so queued when valid) and answered
    ``delay`` seconds later. With a ``status`` the gateway answers that status, ``body`` and ``headers``
    instead, and queues the message anyway only if ``queue`` is set: a 500 that hid a queued message.
    ``reset`` drops the connection without any answer, after queueing the message if ``queue`` is set.
    """

    status: int | None = None
    body: bytes | str | Mapping[str, Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    queue: bool = False
    reset: bool = False

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Queue the message at once and answer normally ``delay`` seconds later (past a short client timeout)."""
        return cls(delay=delay)

    @classmethod
    def reset_after_queueing(cls) -> Fault:
        """Queue the message, then drop the connection without answering."""
        return cls(status=0, queue=True, reset=True)

    @classmethod
    def reset_before_queueing(cls) -> Fault:
        """Drop the connection without answering and without queueing anything."""
        return cls(status=0, reset=True)

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(status=429, body={"error": "Too many requests, slow down"}, headers=headers)

    @classmethod
    def unavailable(cls, retry_after: float | None = None) -> Fault:
        headers = {"Content-Type": "text/html"} | ({} if retry_after is None else {"Retry-After": str(retry_after)})
        return cls(
            status=503, body="<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", headers=headers
        )

    @classmethod
    def server_error(cls, status: int = 500, *, queued: bool = True) -> Fault:
        """A 5xx answer; by default the message was queued before the gateway failed."""
        return cls(status=status, body={"error": "Internal server error"}, queue=queued)

    @classmethod
    def bad_gateway_page(cls, *, queued: bool = True) -> Fault:
        """A proxy's HTML 502 page in front of a gateway that may have queued the message."""
        page = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
        return cls(status=502, body=page, headers={"Content-Type": "text/html"}, queue=queued)

    @classmethod
    def garbage(cls, body: bytes | str = b"\x00not json", *, status: int = 200, queued: bool = True) -> Fault:
        return cls(status=status, body=body, headers={"Content-Type": "application/octet-stream"}, queue=queued)

    @classmethod
    def rejected(cls, message: str = "Wrong chatId format. Please use 17633123456@c.us") -> Fault:
        return cls(status=200, body={"sent": False, "message": message})

    @classmethod
    def window_closed(cls) -> Fault:
        """1msg's refusal of a free-form message outside WhatsApp's 24-hour customer-service window."""
        text = "Dialog window is closed. The recipient has to write first (24-hour window); use a template message"
        return cls(status=400, body={"error": text})

    @classmethod
    def forbidden_text(cls, text: str = "Channel is in trial mode or blocked") -> Fault:
        """1msg's plain-text 403 for a trial or blocked channel."""
        return cls(status=403, body=text, headers={"Content-Type": "text/plain"})

    @classmethod
    def queued_as_job(cls) -> Fault:
        """1msg took the send as a queued job: the card is queued, but the answer says ``sent: false``."""
        body = {
            "sent": False,
            "jobId": f"job_{secrets.token_hex(6)}",
            "message": "Request accepted and queued as a job",
        }
        return cls(status=200, body=body, queue=True)

    @classmethod
    def redirect(cls, location: str = "/elsewhere", status: int = 307) -> Fault:
        """A redirect (a moved gateway, a proxy): nothing is queued."""
        return cls(status=status, headers={"Location": location})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it (the token included, as sent)."""

    method: str
    path: str
    endpoint: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any
    client_port: int
    """The client's TCP port: the same port on two requests means the connection was reused."""


@dataclass(frozen=True)
class QueuedMessage:
    """A contact card the stand-in accepted."""

    id: str
    chat_id: str
    contact_ids: tuple[str, ...]
    """Each contact's WhatsApp id; on 1msg, each card's first ``wa_id`` (a card without one adds none)."""
    time: int
    message_number: int
    quoted_message_id: str | None = None
    delivered: bool = False
    contacts: tuple[dict[str, Any], ...] = ()
    """1msg: the contact cards exactly as received."""

    @property
    def type(self) -> str:
        if self.contacts:
            return "contacts"
        return "vcard" if len(self.contact_ids) == 1 else "multi_vcard"

    @property
    def vcards(self) -> str:
        """The message's text as the gateway's history stores a contact card: vCards, a ``waid=`` per number."""
        if not self.contacts:
            return "\n".join(_vcard(f"+{contact[:-5]}", [contact[:-5]]) for contact in self.contact_ids)
        return "\n".join(
            _vcard(
                card["name"]["formatted_name"], [phone["wa_id"] for phone in card.get("phones", []) if "wa_id" in phone]
            )
            for card in self.contacts
        )


def _vcard(name: str, numbers: list[str]) -> str:
    phones = "".join(f"TEL;type=CELL;waid={number}:+{number}\n" for number in numbers)
    return f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\n{phones}END:VCARD"


class StandInGateway:
    """A Chat API instance on ``127.0.0.1`` (an ephemeral port unless one is given).

    :param dialect: ``"chatapi"`` (classic) or ``"1msg"``.
    :param token: the token it accepts; any other gets the gateway's 401.
    :param instance_id: its instance id; the API URL is ``http://127.0.0.1:PORT/instance<id>`` (classic)
        or ``http://127.0.0.1:PORT/<id>`` (1msg).
    :param account_status: what ``status`` reports; by default ``authenticated`` (classic: anything else
        keeps messages queued) or ``connected`` (1msg).
    :param echo_token: put the offending token in 401 texts, as some gateway versions and 1msg do.
    :param delay: seconds to wait before every answer (a gateway's latency).
    :param history: 1msg: whether the channel keeps message history; without, ``messages`` answers a
        ``notice`` and no messages.
    :param queue_chat_ids: classic: whether ``showMessagesQueue`` entries name their chat
        (``metadata.chatId``); gateway versions that leave it out exist.
    :param refuse_chats: chat ids the gateway refuses to send to, each with its refusal text (a number
        not on WhatsApp, a group the instance left): a valid send there is answered ``sent: false`` with
        that text and queues nothing.
    """

    def __init__(
        self,
        *,
        dialect: str = "chatapi",
        token: str = DEFAULT_TOKEN,
        instance_id: str = DEFAULT_INSTANCE_ID,
        port: int = 0,
        account_status: str | None = None,
        echo_token: bool = False,
        delay: float = 0.0,
        history: bool = True,
        queue_chat_ids: bool = True,
        refuse_chats: Mapping[str, str] | None = None,
    ) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect={dialect!r}: the stand-in speaks {' or '.join(DIALECTS)}")
        self.dialect = dialect
        self.token = token
        self.instance_id = instance_id
        self.account_status = account_status or ("connected" if dialect == "1msg" else "authenticated")
        self.echo_token = echo_token
        self.delay = delay
        self.history = history
        self.queue_chat_ids = queue_chat_ids
        self.refuse_chats = dict(refuse_chats or {})
        self.errors: list[str] = []
        """Errors raised inside the stand-in while handling a request: a bug here, not a client's doing."""
        self._requested_port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._messages: list[QueuedMessage] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._in_flight = 0
        self.peak_in_flight = 0
        """The most requests the stand-in was handling at one time: a client's concurrency, seen from here."""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> StandInGateway:
        server = _Server((LOOPBACK, self._requested_port), _Handler)
        server.gateway = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="chatapi-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandInGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- addressing ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in gateway is not running; call start() or use it as a context manager")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api_url(self) -> str:
        """The instance's API URL, as a ``chatapi`` connection's host."""
        return f"{self.base_url}{self._instance_path}"

    @property
    def _instance_path(self) -> str:
        return f"/{self.instance_id}" if self.dialect == "1msg" else f"/instance{self.instance_id}"

    def connection_json(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_<ID>`` value for a ``chatapi`` connection to this stand-in.

        For 1msg it names the dialect: a loopback host does not say it the way ``api.1msg.io`` does.
        """
        conn: dict[str, Any] = {"conn_type": "chatapi", "host": self.api_url, "password": self.token}
        if self.dialect == "1msg":
            extra = {"dialect": "1msg", **extra}
        if extra:
            conn["extra"] = extra
        return json.dumps(conn)

    # ---- scripting and inspection ------------------------------------------------------------

    def inject(self, *faults: Fault, endpoint: str = "sendContact") -> None:
        """Answer the next requests to ``endpoint`` with these faults, one each, in order."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.endpoint == endpoint]

    @property
    def messages(self) -> list[QueuedMessage]:
        """Every contact card accepted, delivered or still queued, in order."""
        with self._lock:
            return list(self._messages)

    def deliver_queue(self) -> None:
        """Deliver every queued message, as an instance does once its phone is linked."""
        with self._lock:
            self._messages = [_delivered(message) for message in self._messages]

    def reset(self) -> None:
        """Forget requests, messages, pending faults and the peak of requests in flight."""
        with self._lock:
            self._requests.clear()
            self._messages.clear()
            self._faults.clear()
            self.peak_in_flight = self._in_flight

    # ---- the gateway's behaviour --------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            pending = self._faults.get(request.endpoint)
            return pending.popleft() if pending else None

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        """The normal answer: the gateway's own checks, then the endpoint."""
        onemsg = self.dialect == "1msg"
        if request.query.get("token") != self.token:
            return 401, {"error": self._wrong_token(request.query.get("token"))}
        known = (request.method, request.endpoint) in _ENDPOINTS[self.dialect]
        if not request.path.startswith(f"{self._instance_path}/") or not known:
            return 404, {"error": f"Unknown method {request.method} {request.path}"}
        if request.endpoint == "sendContact":
            return self._send_cards(request.json) if onemsg else (200, self._send_contact(request.json))
        if request.endpoint == "status":
            return 200, {"status" if onemsg else "accountStatus": self.account_status}
        if request.endpoint == "showMessagesQueue":
            return 200, self._queue_listing()
        if onemsg and not self.history:
            return 200, {"notice": "Message history storage is disabled for this channel"}
        # A malformed number is the client's mistake: answer it, rather than fail inside the stand-in (which
        # would be recorded in ``errors`` as a bug here).
        problem = _history_query_problem(request.query)
        if problem:
            return 400, {"error": problem}
        return 200, self._history(request.query)

    def _wrong_token(self, token: str | None) -> str:
        if self.dialect == "1msg":
            shown = f' "{token or ""}"' if self.echo_token else ""
            return f'Wrong token{shown} for channel "{self.instance_id}". Please provide token as a GET parameter.'
        return f"{WRONG_TOKEN} Got: {token}" if self.echo_token else WRONG_TOKEN

    def _send_cards(self, body: Any) -> tuple[int, dict[str, Any]]:
        problem, chat_id, cards = check_onemsg_send(body)
        if problem:
            return 400, {"error": problem}
        if chat_id in self.refuse_chats:
            return 200, {"sent": False, "message": self.refuse_chats[chat_id]}
        message = self._queue(
            id=f"wamid.HBgL{secrets.token_urlsafe(18)}",
            chat_id=chat_id,
            contact_ids=tuple(
                f"{phones[0]['wa_id']}@c.us"
                for phones in (card.get("phones", []) for card in cards)
                if phones and "wa_id" in phones[0]
            ),
            quoted_message_id=body.get("quotedMsgId"),
            delivered=True,  # 1msg has no outbound queue: an accepted card is in the history at once
            contacts=cards,
        )
        answer = {"sent": True, "id": message.id, "message": f"Sent to {chat_id}"}
        return 200, {**answer, "description": "Message has been sent to the provider"}

    def _queue(self, **fields: Any) -> QueuedMessage:
        with self._lock:
            message = QueuedMessage(time=int(time.time()), message_number=len(self._messages) + 1, **fields)
            self._messages.append(message)
        return message

    def _send_contact(self, body: Any) -> dict[str, Any]:
        problem, chat_id, contacts = check_classic_send(body)
        if problem or chat_id in self.refuse_chats:
            return {"sent": False, "message": problem or self.refuse_chats[chat_id]}
        message = self._queue(
            id=f"true_{chat_id}_{secrets.token_hex(10).upper()}",
            chat_id=chat_id,
            contact_ids=contacts,
            quoted_message_id=body.get("quotedMsgId"),
            delivered=self.account_status == "authenticated",
        )
        queue_number = sum(not queued.delivered for queued in self.messages)
        if self.account_status == "authenticated":
            text = f"Sent to {chat_id}"
        else:
            text = f"Message queued; it will be sent once the instance is authorised (status {self.account_status!r})"
        return {"sent": True, "message": text, "id": message.id, "queueNumber": queue_number}

    def _queue_listing(self) -> dict[str, Any]:
        queued = [message for message in self.messages if not message.delivered]
        return {
            "totalMessages": len(queued),
            "first100": [
                {
                    "id": message.id,
                    "body": message.vcards,
                    "type": message.type,
                    "last_try": message.time,
                    "metadata": {"chatId": message.chat_id} if self.queue_chat_ids else {},
                }
                for message in queued[:100]
            ],
        }

    def _history(self, query: Mapping[str, str]) -> dict[str, Any]:
        delivered = [message for message in self.messages if message.delivered]
        chat_id = query.get("chatId")
        min_time = int(query.get("min_time") or 0)
        max_time = int(query.get("max_time") or 2**62)
        matching = [
            m for m in delivered if (chat_id is None or m.chat_id == chat_id) and min_time <= m.time <= max_time
        ]
        limit = int(query.get("limit") or 100)
        return {
            "messages": [
                {
                    "id": message.id,
                    "body": message.vcards,
                    "type": message.type,
                    "senderName": "stand-in",
                    "fromMe": True,
                    "author": f"{self.instance_id}@c.us",
                    "time": message.time,
                    "chatId": message.chat_id,
                    "messageNumber": message.message_number,
                }
                for message in matching[-limit:]
            ],
            "lastMessageNumber": delivered[-1].message_number if delivered else 0,
        }


def _history_query_problem(query: Mapping[str, str]) -> str | None:
    for name in ("min_time", "max_time", "limit"):
        value = query.get(name)
        # isdigit alone passes digits such as "²" that int() refuses
        if value and not (value.isascii() and value.isdigit()):
            return f"{name} must be a whole number, got {value!r}"
    if query.get("limit") and int(query["limit"]) < 1:
        # ``matching[-0:]`` is the whole list: a zero limit would quietly mean no limit
        return "limit must be at least 1"
    return None


def _delivered(message: QueuedMessage) -> QueuedMessage:
    return QueuedMessage(**{**message.__dict__, "delivered": True})


class _Server(ThreadingHTTPServer):
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

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default access log would print every URL, token included."""

    def _handle(self) -> None:
        gateway = self.server.gateway
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed_json = json.loads(raw) if raw else None
        except ValueError:
            parsed_json = None
        url = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            endpoint=url.path.rstrip("/").rpartition("/")[2],
            query=dict(parse_qsl(url.query)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=raw,
            json=parsed_json,
            client_port=self.client_address[1],
        )
        fault = gateway._record(request)
        try:
            self._act(gateway, request, fault)
        finally:
            gateway._done()

    def _act(self, gateway: StandInGateway, request: RecordedRequest, fault: Fault | None) -> None:
        # The gateway acts on a request as it arrives; only its answer is late (or never comes).
        if fault is None or fault.status is None:
            answer: tuple[int, Any, Mapping[str, str]] | None = (*gateway._answer(request), {})
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


def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a stand-in Chat API gateway on 127.0.0.1.")
    parser.add_argument("--dialect", choices=DIALECTS, default="chatapi")
    parser.add_argument("--no-history", action="store_true", help="1msg: answer messages with a notice")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--instance-id", default=DEFAULT_INSTANCE_ID)
    parser.add_argument("--account-status", help="what status reports (default: the dialect's healthy one)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args(argv)
    gateway = StandInGateway(
        dialect=args.dialect,
        history=not args.no_history,
        token=args.token,
        instance_id=args.instance_id,
        port=args.port,
        account_status=args.account_status,
        delay=args.delay,
    ).start()
    print(f"Stand-in Chat API gateway ({args.dialect}) at {gateway.api_url}", flush=True)
    print(f"AIRFLOW_CONN_CHATAPI_DEFAULT='{gateway.connection_json()}'", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        gateway.stop()


if __name__ == "__main__":
    _serve()
