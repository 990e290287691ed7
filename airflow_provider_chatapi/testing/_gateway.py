"""The stand-in gateway: its settings and state, the cards it accepted (:class:`QueuedMessage`), the answer of
each endpoint, what it can be told to answer instead (:class:`Fault`) and to report of each card
(:class:`Ack`), its clients' connections, and the control API through which a test in another process reads
and scripts it.

The control API lives on the gateway's own port under :data:`PREFIX` (``/_standin/``), which no gateway path
starts with (classic paths start ``/instance``, 1msg's with the instance id). JSON in and out, no token: the
stand-in listens on 127.0.0.1 only. Control requests are not recorded, meet no injected fault and no
``delay``; only their connections are counted with the others.

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

import contextlib
import dataclasses
import json
import secrets
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi.testing import _checks
from airflow_provider_chatapi.testing._server import LOOPBACK, Answer, RecordedRequest, _Server

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "DEFAULT_ACKS",
    "DEFAULT_INSTANCE_ID",
    "DEFAULT_PROFILE",
    "DEFAULT_TOKEN",
    "DIALECTS",
    "FAULT_KINDS",
    "PREFIX",
    "Ack",
    "Fault",
    "QueuedMessage",
    "StandInGateway",
]

DEFAULT_TOKEN = "standin-token-4c7f2a9e"
DEFAULT_INSTANCE_ID = "123456"
DIALECTS = ("chatapi", "1msg")  # the classic Chat API, and 1msg's
PREFIX = "/_standin/"
# What 1msg's ``GET me`` answers by default: the channel's WhatsApp Business profile, every field of the 1.0.0
# ``ProfileInfo`` model (``websites`` is not in 2.39.0's ``GetMe``, whose SDK leaves it out), ``vertical`` one
# of the values both contracts enumerate, ``phone`` the 2.39.0 example's.
DEFAULT_PROFILE: Mapping[str, Any] = {
    "about": "A stand-in 1msg channel on loopback",
    "address": "127.0.0.1",
    "description": "airflow-provider-chatapi's stand-in gateway",
    "email": "standin@example.com",
    "phone": "12020721369",
    "vertical": "Other",
    "photo": "https://example.com/standin.jpg",
    "websites": ["https://example.com/standin"],
}
WRONG_TOKEN = "Wrong token. Please provide token as a GET parameter."
_ENDPOINTS = {
    "chatapi": {("POST", "sendContact"), ("GET", "status"), ("GET", "showMessagesQueue"), ("GET", "messages")},
    "1msg": {("POST", "sendContact"), ("GET", "status"), ("GET", "messages"), ("GET", "me"), ("GET", "hookInfo")},
}
_CONTROL = dict(requests="GET", messages="GET", stats="GET", faults="POST", reset="POST", deliver_queue="POST")


@dataclass(frozen=True)
class QueuedMessage:
    """A contact card the stand-in accepted: ``contact_ids`` holds each contact's WhatsApp id (on 1msg, each
    card's first ``wa_id``: a card without one adds none), ``contacts`` (1msg) the cards exactly as received."""

    id: str
    chat_id: str
    contact_ids: tuple[str, ...]
    time: int
    message_number: int
    quoted_message_id: str | None = None
    delivered: bool = False
    contacts: tuple[dict[str, Any], ...] = ()

    @property
    def type(self) -> str:
        return "contacts" if self.contacts else "vcard" if len(self.contact_ids) == 1 else "multi_vcard"

    @property
    def vcards(self) -> str:
        """The message's text as the gateway's history stores a contact card: vCards, a ``waid=`` per number."""
        if not self.contacts:
            return "\n".join(_vcard(f"+{contact[:-5]}", [contact[:-5]]) for contact in self.contact_ids)
        return "\n".join(
            _vcard(card["name"]["formatted_name"], [p["wa_id"] for p in card.get("phones", []) if "wa_id" in p])
            for card in self.contacts
        )

    def _listed(self, **fields: Any) -> dict[str, Any]:
        """The message as the gateway lists it (its queue, its history): its id, text and type, then ``fields``."""
        return {"id": self.id, "body": self.vcards, "type": self.type, **fields}


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of the normal answer.

    With no ``status`` the request is handled normally (and so queued when valid) and answered
    ``delay`` seconds later; a success (a 2xx JSON object that does not say ``sent: false``) then carries
    ``fields`` too, and ``ok_status`` instead of its own status if set. With a ``status`` the gateway
    answers that status, ``body`` and ``headers`` instead, and queues the message anyway only if
    ``queue`` is set: a 500 that hid a queued message.
    ``reset`` drops the connection without any answer, after queueing the message if ``queue`` is set.
    """

    status: int | None = None
    body: bytes | str | Mapping[str, Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    queue: bool = False
    reset: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)
    ok_status: int | None = None

    def decorate(self, status: int, body: Any) -> tuple[int, Any]:
        """The normal answer ``status`` and ``body`` as this fault changes it: a success (a 2xx JSON object
        that does not say ``sent: false``) gets :attr:`fields` and :attr:`ok_status`; any other answer is
        left as it is."""
        if not (200 <= status < 300 and isinstance(body, dict) and body.get("sent") is not False):
            return status, body
        return (status if self.ok_status is None else self.ok_status), {**body, **self.fields}

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Queue the message at once and answer normally ``delay`` seconds later (past a short client timeout)."""
        return cls(delay=delay)

    @classmethod
    def decorated(cls, fields: Mapping[str, Any] | None = None, *, status: int | None = None) -> Fault:
        """Handle the request normally, and answer a success with ``fields`` added (``{"error": None}`` makes
        ``{"sent": true, "id": …, "error": null}``) and with ``status`` (a 201, say) if given: an odd answer
        that still means the card was queued. A refusal or an error is answered as it is."""
        return cls(fields=dict(fields or {}), ok_status=status)

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
        page = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
        return cls(status=503, body=page, headers=headers)

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
        job = {"sent": False, "jobId": f"job_{secrets.token_hex(6)}", "message": "Request accepted and queued as a job"}
        return cls(status=200, body=job, queue=True)

    @classmethod
    def redirect(cls, location: str = "/elsewhere", status: int = 307) -> Fault:
        """A redirect (a moved gateway, a proxy): nothing is queued."""
        return cls(status=status, headers={"Location": location})


def _vcard(name: str, numbers: list[str]) -> str:
    phones = "".join(f"TEL;type=CELL;waid={number}:+{number}\n" for number in numbers)
    return f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\n{phones}END:VCARD"


# The fault kinds the control API makes: Fault's factory methods, and only those.
FAULT_KINDS = tuple(sorted(name for name, value in vars(Fault).items() if isinstance(value, classmethod)))


@dataclass(frozen=True)
class Ack:
    """One WhatsApp status event of a card, ``after`` seconds after the stand-in queued it and from the
    ``hookInfo`` answer that follows ``after_polls`` earlier ones about that card (a delay that does not
    depend on when a test's sensor starts).

    ``status`` is ``sent``, ``delivered``, ``read``, ``played``, ``failed``, ... A failure carries 1msg's text
    (``error``) or Meta's ``errors[]``, or both. An ``errors[]`` entry has the shape of Meta's current status
    webhook, which clients such as pywa parse (its ``WhatsAppError.from_dict`` needs ``code`` and
    ``message``): ``code``, ``title``, ``message`` (Meta repeats the title there) and ``error_data``
    ``{"details": details}`` (the title again unless ``details`` is given).
    """

    status: str
    after: float = 0.0
    after_polls: int = 0
    error: str | None = None
    code: int | None = None
    title: str | None = None
    details: str | None = None

    def event(self, message: QueuedMessage, queued_at: float) -> dict[str, Any]:
        """The event as ``hookInfo`` lists it, in Meta's status shape."""
        event: dict[str, Any] = {"id": message.id, "type": "message", "status": self.status}
        event.update(timestamp=str(int(queued_at + self.after)), recipient_id=message.chat_id.partition("@")[0])
        if self.error is not None:
            event["error"] = self.error
        if self.code is not None or self.title is not None or self.details is not None:
            title = self.title or ""
            error_data = {"details": self.details or title}
            event["errors"] = [{"code": self.code, "title": title, "message": title, "error_data": error_data}]
        return event


DEFAULT_ACKS = (Ack("sent"), Ack("delivered"))  # what a card not scripted otherwise reports: both at once


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
    :param acks: 1msg: the delivery acks ``hookInfo`` reports for cards to each chat id, as :class:`Ack`
        events in the order listed (out of order, read without delivered, failed, none at all: as scripted);
        ``default_acks`` for the other chats (sent and delivered at once).
    :param hook_info: 1msg: whether the channel's API has ``hookInfo``; without, it answers 404.
    :param clock_offset: seconds by which the gateway's clock is ahead of this machine's (behind, if
        negative): its messages' ``time`` and its answers' ``Date`` header read that clock.
    :param date_header: whether its answers carry a ``Date`` header (every real server's do).
    :param profile: 1msg: what ``GET me`` answers (:data:`DEFAULT_PROFILE` unless given).

    It counts its clients' TCP connections (:attr:`open_connections`, :attr:`connections_accepted`), so a
    test can see that a client closed them: ``assert gateway.wait_until_no_open_connections() == 0``.
    :attr:`errors` lists the errors raised inside the stand-in while it handled a request: a bug here, not
    a client's doing. :attr:`peak_in_flight` is the most requests it was handling at one time: a client's
    concurrency, seen from here.
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
        acks: Mapping[str, Sequence[Ack]] | None = None,
        default_acks: Sequence[Ack] = DEFAULT_ACKS,
        hook_info: bool = True,
        clock_offset: float = 0.0,
        date_header: bool = True,
        profile: Mapping[str, Any] | None = None,
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
        self.hook_info = hook_info
        self.clock_offset = clock_offset
        self.date_header = date_header
        self.profile = dict(DEFAULT_PROFILE if profile is None else profile)
        self.errors: list[str] = []
        self.peak_in_flight = 0
        self._requested_port = port
        self._acks = {chat: tuple(script) for chat, script in (acks or {}).items()}
        self._default_acks = tuple(default_acks)
        # A condition, so that each closed connection can wake wait_until_no_open_connections.
        self._lock = threading.Condition(threading.Lock())
        self._requests: list[RecordedRequest] = []
        self._messages: list[QueuedMessage] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._in_flight = 0
        # Each 1msg card's ack clock: when it was queued (the wall clock, as hookInfo's timestamps are, not
        # the gateway's), how many hookInfo answers were about it.
        self._queued_at: dict[str, float] = {}
        self._polls: dict[str, int] = {}
        self._open: set[socket.socket] = set()
        self._accepted = 0
        self._server: _Server | None = None
        # Told each change, under the lock: ``--state`` (_state.py) writes it down.
        self._journal: Callable[[str, Any], None] = lambda event, value: None

    def now(self) -> float:
        """The gateway's clock: this machine's plus :attr:`clock_offset`. It reads the package's ``time``
        attribute, so that a test sets the clock with ``monkeypatch.setattr(airflow_provider_chatapi.testing,
        "time", ...)``."""
        return float(sys.modules[__name__.rpartition(".")[0]].time.time()) + self.clock_offset

    # ---- lifecycle and addressing ------------------------------------------------------------------

    def start(self) -> StandInGateway:
        self._server = _Server(self, self._requested_port)
        # A poll interval of 50 ms, not 500: stop() waits for the serving loop's next poll.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="chatapi-stand-in", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening, and close the connections clients still hold open (kept alive, or waiting for
        an answer): a stopped gateway answers nothing more. It does not wait for their handlers, which
        finish on their own; :meth:`wait_until_no_open_connections` waits for them."""
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                server, self._server = self._server, None
                for connection in self._open:
                    _hang_up(connection)
            server.server_close()

    def __enter__(self) -> StandInGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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
        extra = {"dialect": "1msg", **extra} if self.dialect == "1msg" else extra
        conn = {"conn_type": "chatapi", "host": self.api_url, "password": self.token}
        return json.dumps({**conn, "extra": extra} if extra else conn)

    # ---- scripting and inspection ------------------------------------------------------------------

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
            self._messages = [dataclasses.replace(message, delivered=True) for message in self._messages]
            self._journal("deliver", None)

    def reset(self) -> None:
        """Forget requests, messages, pending faults, the peak of requests in flight and the count of
        connections accepted.

        What is still going on is not forgotten: the peak starts from the requests in flight, and the
        connections still open stay open, counted in :attr:`open_connections` and again in
        :attr:`connections_accepted` (a client may go on using one after the reset).
        """
        with self._lock:
            self._requests.clear()
            self._messages.clear()
            self._faults.clear()
            self.peak_in_flight = self._in_flight
            self._accepted = len(self._open)
            self._journal("reset", None)

    # ---- connections -------------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Client connections open now: accepted, and closed by neither the client nor the stand-in.

        A client's close reaches the stand-in a moment later: to see it, use
        :meth:`wait_until_no_open_connections` rather than reading this at once.
        """
        with self._lock:
            return len(self._open)

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since the start, or since :meth:`reset` (counting those open then).

        Fewer connections than requests means a client reused its connections (HTTP keep-alive).
        """
        with self._lock:
            return self._accepted

    def wait_until_no_open_connections(self, timeout: float = 5.0) -> int:
        """Wait until no client connection is open, or ``timeout`` seconds; return how many are left open.

        ``assert gateway.wait_until_no_open_connections() == 0`` checks that every client closed its
        connections. It waits on a condition that each closed connection signals, not in a sleep loop.
        """
        with self._lock:
            self._lock.wait_for(lambda: not self._open, timeout)
            return len(self._open)

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.add(connection)
            self._accepted += 1
            if self._server is None:  # accepted as the gateway stopped, after it hung up on the others
                _hang_up(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.discard(connection)
            self._lock.notify_all()

    # ---- the gateway's behaviour -------------------------------------------------------------------

    def _serve(self, request: RecordedRequest) -> Answer | None:
        """Record the request and act on it; the answer, or None to reset the connection."""
        if request.path.startswith(PREFIX):  # the control API: not recorded, faulted nor delayed
            return *self._control(request), {}
        with self._lock:
            self._requests.append(request)
            self._journal("request", request)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            pending = self._faults.get(request.endpoint)
            fault = pending.popleft() if pending else Fault()
        try:
            # The gateway acts on a request as it arrives; only its answer is late (or never comes).
            if fault.status is None:
                answer: Answer | None = (*fault.decorate(*self._answer(request)), {})
            else:
                if fault.queue:
                    self._answer(request)
                answer = None if fault.reset else (fault.status, fault.body, fault.headers)
            if self.delay or fault.delay:
                time.sleep(self.delay + fault.delay)
            return answer
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        """The normal answer: the gateway's own checks, then the endpoint."""
        onemsg, endpoint, token = self.dialect == "1msg", request.endpoint, request.query.get("token")
        if token != self.token:
            if not onemsg:
                return 401, {"error": f"{WRONG_TOKEN} Got: {token}" if self.echo_token else WRONG_TOKEN}
            shown = f' "{token or ""}"' if self.echo_token else ""
            text = f'Wrong token{shown} for channel "{self.instance_id}". Please provide token as a GET parameter.'
            return 401, {"error": text}
        known = (request.method, endpoint) in _ENDPOINTS[self.dialect] and (endpoint != "hookInfo" or self.hook_info)
        if not known or not request.path.startswith(f"{self._instance_path}/"):
            return 404, {"error": f"Unknown method {request.method} {request.path}"}
        if endpoint == "sendContact":
            return self._send(request.json)
        if endpoint == "status":
            return 200, {"status" if onemsg else "accountStatus": self.account_status}
        if endpoint == "me":
            return 200, dict(self.profile)
        if endpoint == "showMessagesQueue":
            queued = [message for message in self.messages if not message.delivered]
            first100 = [
                m._listed(last_try=m.time, metadata={"chatId": m.chat_id} if self.queue_chat_ids else {})
                for m in queued[:100]
            ]
            return 200, {"totalMessages": len(queued), "first100": first100}
        if endpoint == "hookInfo":
            return self._hooks(request.query.get("messageId"))
        if onemsg and not self.history:
            return 200, {"notice": "Message history storage is disabled for this channel"}
        # A malformed number is the client's mistake: answer it, rather than fail inside the stand-in (which
        # would be recorded in ``errors`` as a bug here).
        problem = _checks.check_history_query(request.query)
        return (400, {"error": problem}) if problem else (200, self._history(request.query))

    def _send(self, body: Any) -> tuple[int, dict[str, Any]]:
        """``sendContact``: the dialect's checks, then the card queued; 1msg has no outbound queue, so there
        an accepted card is delivered (in the history) at once."""
        onemsg = self.dialect == "1msg"
        cards: tuple[dict[str, Any], ...] = ()
        if onemsg:
            problem, chat_id, cards = _checks.check_onemsg_send(body)
            if problem:
                return 400, {"error": problem}
            phones = [card.get("phones") for card in cards]  # a card's contact id: its first phone's wa_id, if any
            contact_ids = tuple(f"{first[0]['wa_id']}@c.us" for first in phones if first and "wa_id" in first[0])
            message_id = f"wamid.HBgL{secrets.token_urlsafe(18)}"
        else:
            problem, chat_id, contact_ids = _checks.check_classic_send(body)
            message_id = f"true_{chat_id}_{secrets.token_hex(10).upper()}"
        if problem or chat_id in self.refuse_chats:
            return 200, {"sent": False, "message": problem or self.refuse_chats[chat_id]}
        delivered = onemsg or self.account_status == "authenticated"
        with self._lock:
            number, quoted = len(self._messages) + 1, body.get("quotedMsgId")
            message = QueuedMessage(message_id, chat_id, contact_ids, int(self.now()), number, quoted, delivered, cards)
            self._messages.append(message)
            self._journal("message", message)
            if onemsg:
                self._queued_at[message_id] = time.time()
                self._journal("queued_at", [message_id, self._queued_at[message_id]])
        if onemsg:
            answer = {"sent": True, "id": message_id, "message": f"Sent to {chat_id}"}
            return 200, {**answer, "description": "Message has been sent to the provider"}
        queue_number = sum(not queued.delivered for queued in self.messages)
        text = f"Sent to {chat_id}"
        if not delivered:
            text = f"Message queued; it will be sent once the instance is authorised (status {self.account_status!r})"
        return 200, {"sent": True, "message": text, "id": message_id, "queueNumber": queue_number}

    def _hooks(self, message_id: str | None) -> tuple[int, dict[str, Any]]:
        """``hookInfo``'s answer: the events of the card due by now, in its script's order; none for an id the
        gateway never gave."""
        if not message_id:
            return 400, {"error": "messageId is required"}
        message = next((message for message in self.messages if message.id == message_id), None)
        with self._lock:
            if message is None or message_id not in self._queued_at:
                return 200, {"hooks": []}
            queued_at = self._queued_at[message_id]
            polls = self._polls[message_id] = self._polls.get(message_id, 0) + 1
            self._journal("polls", [message_id, polls])
        elapsed = time.time() - queued_at
        script = self._acks.get(message.chat_id, self._default_acks)
        due = [ack for ack in script if ack.after <= elapsed and ack.after_polls < polls]
        return 200, {"hooks": [ack.event(message, queued_at) for ack in due]}

    def _history(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``messages``' answer: the delivered messages (oldest first) that the query (checked before) asks for.

        The parameters, as 1msg's 2.39.0 contract (``swagger.waba.json``, its ``messagesList`` parameters)
        and classic chat-api's documentation describe them; where they are silent the choice is noted:

        - ``chatId``: one chat's messages; ``min_time``/``max_time``: sent in that span (unix seconds, both
          ends included: the contract says "after" and "before" without saying whether they are strict);
        - ``msgId`` ("Message ID"): the message of that id only (a filter, like the others: the contract
          says no more);
        - ``lastMessageNumber`` ("The lastMessageNumber parameter from the last response"): the messages
          numbered above it, the *oldest* ``limit`` of them, so that a client passing back each answer's
          ``lastMessageNumber`` reads every message once, in order;
        - ``last`` (a flag: "Displays the last messages. If this parameter is passed, then
          lastMessageNumber is ignored"): the *newest* ``limit`` messages; without ``lastMessageNumber``
          the page is the newest too;
        - ``limit`` ("Default 100. With value 0 returns all messages").

        The answer's ``lastMessageNumber`` is what to pass back next time: after a ``lastMessageNumber``,
        the number of the last message listed (or the one given, when none was); otherwise the newest
        message's number.
        """
        delivered = [message for message in self.messages if message.delivered]
        min_time, max_time = int(query.get("min_time") or 0), int(query.get("max_time") or 2**62)
        last = _checks.history_flag(query.get("last")) or "lastMessageNumber" not in query
        after = 0 if last else int(query["lastMessageNumber"])  # message numbers start at 1
        chat_id, message_id = query.get("chatId"), query.get("msgId")
        matching = [m for m in delivered if min_time <= m.time <= max_time and m.message_number > after]
        matching = [m for m in matching if chat_id in (None, m.chat_id) and message_id in (None, m.id)]
        limit = int(query.get("limit") or 100) or len(matching)  # 0: every message
        if not last:
            page = matching[:limit]
            last_number = page[-1].message_number if page else after
        else:
            page = matching[-limit:]  # an empty list's [-0:] is empty too
            last_number = delivered[-1].message_number if delivered else 0
        sender = {"senderName": "stand-in", "fromMe": True, "author": f"{self.instance_id}@c.us"}
        listed = [m._listed(**sender, time=m.time, chatId=m.chat_id, messageNumber=m.message_number) for m in page]
        return {"messages": listed, "lastMessageNumber": last_number}

    # ---- the control API (the module's text) -------------------------------------------------------

    def _control(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        name, method = request.path[len(PREFIX) :].strip("/"), request.method
        if name not in _CONTROL:
            known = ", ".join(f"{verb} {PREFIX}{route}" for route, verb in _CONTROL.items())
            return 404, {"error": f"No control endpoint {request.path}; there are {known}"}
        if method != _CONTROL[name]:
            return 405, {"error": f"{PREFIX}{name} takes {_CONTROL[name]}, not {method}"}
        if name == "requests":
            endpoint = request.query.get("endpoint")
            return 200, {"requests": [r.as_json() for r in self.requests if endpoint in (None, r.endpoint)]}
        if name == "messages":
            return 200, {"messages": [dataclasses.asdict(message) for message in self.messages]}
        if name == "stats":
            messages = self.messages
            return 200, {
                "dialect": self.dialect,
                "requests": dict(Counter(request.endpoint for request in self.requests)),
                "messages": len(messages),
                "queued": sum(not message.delivered for message in messages),
                "open_connections": self.open_connections,
                "connections_accepted": self.connections_accepted,
                "peak_in_flight": self.peak_in_flight,
                "errors": list(self.errors),
            }
        if name == "faults":
            return self._inject_json(request.json)
        if name == "reset":
            self.reset()
            return 200, {"reset": True}
        if self.dialect == "1msg":
            return 400, {"error": "1msg has no outbound queue: every accepted card is delivered at once"}
        queued = sum(not message.delivered for message in self.messages)
        self.deliver_queue()
        return 200, {"delivered": queued}

    def _inject_json(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("faults"), list):
            return 400, {"error": 'Send a JSON object: {"endpoint": "sendContact", "faults": [{"kind": ...}, ...]}'}
        endpoint, times = body.get("endpoint", "sendContact"), body.get("times", 1)
        if not isinstance(endpoint, str) or not endpoint:
            return 400, {"error": "endpoint must be an endpoint name, such as sendContact"}
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            return 400, {"error": f"times must be a whole number of at least 1, got {times!r}"}
        faults, known = [], ", ".join(FAULT_KINDS)
        # Each repetition makes its faults again: a factory may draw something per fault (a job id).
        for index, spec in [*enumerate(body["faults"])] * times:
            kind = spec.get("kind") if isinstance(spec, dict) else None
            if kind not in FAULT_KINDS:
                return 400, {"error": f"faults[{index}]: unknown fault kind {kind!r}; known: {known}"}
            try:
                faults.append(getattr(Fault, kind)(**{key: value for key, value in spec.items() if key != "kind"}))
            except TypeError as error:  # an argument the factory method does not take
                return 400, {"error": f"faults[{index}]: {kind}: {error}"}
        self.inject(*faults, endpoint=endpoint)
        return 200, {"endpoint": endpoint, "injected": len(faults)}


def _hang_up(connection: socket.socket) -> None:
    """End a connection from the server's side: its handler's next read sees the end of it."""
    with contextlib.suppress(OSError):  # already closed, or reset by the client
        connection.shutdown(socket.SHUT_RDWR)
