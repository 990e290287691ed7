"""The stand-in gateway: its settings and state, the answer of each endpoint, and its clients' connections."""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi.testing._acks import DEFAULT_ACKS, Ack, AckScripts
from airflow_provider_chatapi.testing._checks import (
    check_classic_send,
    check_history_query,
    check_onemsg_send,
    history_flag,
)
from airflow_provider_chatapi.testing._connections import Connections
from airflow_provider_chatapi.testing._records import QueuedMessage, RecordedRequest, as_delivered
from airflow_provider_chatapi.testing._server import _Handler, _Server

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_provider_chatapi.testing._faults import Fault

__all__ = ["DEFAULT_INSTANCE_ID", "DEFAULT_PROFILE", "DEFAULT_TOKEN", "DIALECTS", "LOOPBACK", "StandInGateway"]

LOOPBACK = "127.0.0.1"
DEFAULT_TOKEN = "standin-token-4c7f2a9e"
DEFAULT_INSTANCE_ID = "123456"

DIALECTS = ("chatapi", "1msg")
"""The protocols the stand-in speaks: the classic Chat API, and 1msg's."""

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
"""What 1msg's ``GET me`` answers by default: the channel's WhatsApp Business profile, every field of the
1.0.0 ``ProfileInfo`` model (``websites`` is not in 2.39.0's ``GetMe``, whose SDK leaves it out), ``vertical``
one of the values both contracts enumerate, ``phone`` the 2.39.0 example's."""

WRONG_TOKEN = "Wrong token. Please provide token as a GET parameter."
_ENDPOINTS = {
    "chatapi": {("POST", "sendContact"), ("GET", "status"), ("GET", "showMessagesQueue"), ("GET", "messages")},
    "1msg": {("POST", "sendContact"), ("GET", "status"), ("GET", "messages"), ("GET", "me")},
}
_PACKAGE = __name__.rpartition(".")[0]


def _now() -> float:
    """The machine's clock, read through the package's ``time`` attribute: a test sets the clock by
    replacing ``airflow_provider_chatapi.testing.time``, as it did when the stand-in was one module."""
    return float(sys.modules[_PACKAGE].time.time())


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
        self._acks = AckScripts(acks, default_acks)
        # Told each change, under the lock (``--state``: _state.py writes it down); acks tell their own.
        self._journal: Callable[[str, Any], None] = self._acks.journal
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
        self._connections = Connections(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        """The gateway's clock: this machine's plus :attr:`clock_offset`."""
        return _now() + self.clock_offset

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> StandInGateway:
        server = _Server((LOOPBACK, self._requested_port), _Handler)
        server.gateway = self
        self._server = server
        self._connections.serve()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="chatapi-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, and close the connections clients still hold open (kept alive, or waiting for
        an answer): a stopped gateway answers nothing more. It does not wait for their handlers, which
        finish on their own; :meth:`wait_until_no_open_connections` waits for them."""
        if self._server is not None:
            self._server.shutdown()
            self._connections.hang_up()
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
            self._messages = [as_delivered(message) for message in self._messages]
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
            self._journal("reset", None)
        self._connections.forget_closed()

    # ---- connections --------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Client connections open now: accepted, and closed by neither the client nor the stand-in.

        A client's close reaches the stand-in a moment later: to see it, use
        :meth:`wait_until_no_open_connections` rather than reading this at once.
        """
        return self._connections.open

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since the start, or since :meth:`reset` (counting those open then).

        Fewer connections than requests means a client reused its connections (HTTP keep-alive).
        """
        return self._connections.accepted

    def wait_until_no_open_connections(self, timeout: float = 5.0) -> int:
        """Wait until no client connection is open, or ``timeout`` seconds; return how many are left open.

        ``assert gateway.wait_until_no_open_connections() == 0`` checks that every client closed its
        connections. It waits on a condition that each closed connection signals, not in a sleep loop.
        """
        return self._connections.wait_until_none_open(timeout)

    # ---- the gateway's behaviour --------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self._requests.append(request)
            self._journal("request", request)
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
        known = (request.method, request.endpoint) in _ENDPOINTS[self.dialect] or (
            onemsg and self.hook_info and (request.method, request.endpoint) == ("GET", "hookInfo")
        )
        if not request.path.startswith(f"{self._instance_path}/") or not known:
            return 404, {"error": f"Unknown method {request.method} {request.path}"}
        if request.endpoint == "sendContact":
            return self._send_cards(request.json) if onemsg else (200, self._send_contact(request.json))
        if request.endpoint == "status":
            return 200, {"status" if onemsg else "accountStatus": self.account_status}
        if request.endpoint == "me":
            return 200, dict(self.profile)
        if request.endpoint == "showMessagesQueue":
            return 200, self._queue_listing()
        if request.endpoint == "hookInfo":
            if not request.query.get("messageId"):
                return 400, {"error": "messageId is required"}
            return 200, self._acks.answer(next((m for m in self.messages if m.id == request.query["messageId"]), None))
        if onemsg and not self.history:
            return 200, {"notice": "Message history storage is disabled for this channel"}
        # A malformed number is the client's mistake: answer it, rather than fail inside the stand-in (which
        # would be recorded in ``errors`` as a bug here).
        problem = check_history_query(request.query)
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
        self._acks.queued(message.id)
        answer = {"sent": True, "id": message.id, "message": f"Sent to {chat_id}"}
        return 200, {**answer, "description": "Message has been sent to the provider"}

    def _queue(self, **fields: Any) -> QueuedMessage:
        with self._lock:
            message = QueuedMessage(time=int(self.now()), message_number=len(self._messages) + 1, **fields)
            self._messages.append(message)
            self._journal("message", message)
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
        return _history_page([message for message in self.messages if message.delivered], query, self.instance_id)


_HISTORY_PAGE = 100
"""``messages``' default ``limit`` (both contracts: "Default 100")."""


def _history_page(delivered: Sequence[QueuedMessage], query: Mapping[str, str], instance_id: str) -> dict[str, Any]:
    """``messages``' answer: the ``delivered`` messages (oldest first) that the query (checked before) asks for.

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
    chat_id, message_id = query.get("chatId"), query.get("msgId")
    min_time = int(query.get("min_time") or 0)
    max_time = int(query.get("max_time") or 2**62)
    after = (
        None if history_flag(query.get("last")) or "lastMessageNumber" not in query else int(query["lastMessageNumber"])
    )
    matching = [
        m
        for m in delivered
        if (chat_id is None or m.chat_id == chat_id)
        and (message_id is None or m.id == message_id)
        and min_time <= m.time <= max_time
        and (after is None or m.message_number > after)
    ]
    limit = int(query.get("limit") or _HISTORY_PAGE) or len(matching)  # 0: every message
    if after is not None:
        page = matching[:limit]
        last_number = page[-1].message_number if page else after
    else:
        page = matching[-limit:]  # an empty list's [-0:] is empty too
        last_number = delivered[-1].message_number if delivered else 0
    return {
        "messages": [
            {
                "id": message.id,
                "body": message.vcards,
                "type": message.type,
                "senderName": "stand-in",
                "fromMe": True,
                "author": f"{instance_id}@c.us",
                "time": message.time,
                "chatId": message.chat_id,
                "messageNumber": message.message_number,
            }
            for message in page
        ],
        "lastMessageNumber": last_number,
    }
