"""Sending a contact card at most once across Airflow task retries.

The gateway has no idempotency key, so a try whose answer was lost cannot know whether its card was
queued. On Airflow 3.3+ each task instance has a ``task_state_store`` that outlives its tries; this
module keeps a small record there: the request about to be sent and when (written *before* the POST),
then the message id the gateway gave it. A later try reads it back:

- an id on record: the card was sent; return the id without sending;
- an intent without an id: ask the gateway (the chat's history, and the classic gateway's outbound
  queue) for a card matching the request since the intent; return its id if found, send again only if not;
- no record, or a record of a different request (the inputs changed): send.

:func:`send_once` is a protocol plan, so the synchronous and the asynchronous transports run it alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_chatapi.protocol.errors import DeliveryUnknownError, GatewayError
from airflow_provider_chatapi.protocol.wire import Call

if TYPE_CHECKING:
    from airflow_provider_chatapi.protocol.dialect import Dialect
    from airflow_provider_chatapi.protocol.sends import ContactSend
    from airflow_provider_chatapi.protocol.wire import Plan

__all__ = ["BatchLedger", "DeliveryLedger", "DeliveryRecord", "Ledger", "Log", "StateStore", "send_once"]

LEDGER_KEY = "chatapi_send_contact"


class Log(Protocol):
    """What :func:`send_once` needs of a logger (a stdlib or an Airflow task logger)."""

    def info(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...


class StateStore(Protocol):
    """What this module needs of Airflow's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class DeliveryRecord:
    """One send as recorded in the store: what was sent, when it was attempted, and its id once known."""

    request: dict[str, Any]
    attempted_at: float
    message_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "attempted_at": self.attempted_at, "message_id": self.message_id}


class Ledger(Protocol):
    """Where :func:`send_once` keeps the record of one send."""

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        """The record of an earlier try of this very request, if there is one."""
        ...

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        """Note that this request is about to be sent; called before the POST."""
        ...

    def record_sent(self, record: DeliveryRecord, message_id: str) -> None:
        """Note the id the gateway gave the card."""
        ...


class DeliveryLedger:
    """The record of one send, kept in its task instance's state store under ``key``; every change is
    written at once."""

    def __init__(self, store: StateStore, key: str = LEDGER_KEY, *, first_try: bool = False) -> None:
        self._store = store
        self._key = key
        self._first_try = first_try  # nothing can be on record yet: spare the store a read

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        return None if self._first_try else _record_of(send, self._store.get(self._key))

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        record = DeliveryRecord(request=send.identity(), attempted_at=time.time())
        self._store.set(self._key, record.to_json())
        return record

    def record_sent(self, record: DeliveryRecord, message_id: str) -> None:
        self._store.set(self._key, DeliveryRecord(record.request, record.attempted_at, message_id).to_json())


class BatchLedger:
    """The records of a batch of sends, one per recipient chat, under one key of the store.

    A batch to 200 recipients would otherwise cost 600 calls to the store. Instead it is read once;
    :meth:`begin` writes the intents of every send not tried before in one call, before the first POST,
    and :meth:`flush` writes every outcome in one call at the end. If the worker dies in between, the
    next try finds intents without ids and asks the gateway about each. A card sent again after a lost
    answer keeps its first intent time on record, which still covers it.
    """

    def __init__(self, store: StateStore, key: str = f"{LEDGER_KEY}:batch", *, first_try: bool = False) -> None:
        raw = None if first_try else store.get(key)  # nothing can be on record yet: spare the store a read
        self._store = store
        self._key = key
        self._records: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
        self._fresh: set[str] = set()

    def begin(self, sends: list[ContactSend]) -> None:
        """Record, in one write, the intent of every send that no earlier try recorded."""
        now = time.time()
        for send in sends:
            chat = send.chat_id
            if _record_of(send, self._records.get(chat)) is None:
                self._records[chat] = DeliveryRecord(send.identity(), now).to_json()
                self._fresh.add(chat)
        self._store.set(self._key, self._records)

    def flush(self) -> None:
        """Write every outcome recorded since :meth:`begin`."""
        self._store.set(self._key, self._records)

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        chat = send.chat_id
        return None if chat in self._fresh else _record_of(send, self._records.get(chat))

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        chat = send.chat_id
        self._fresh.discard(chat)
        return _record_of(send, self._records[chat]) or DeliveryRecord(send.identity(), time.time())

    def record_sent(self, record: DeliveryRecord, message_id: str) -> None:
        self._records[record.request["chat_id"]] = DeliveryRecord(
            record.request, record.attempted_at, message_id
        ).to_json()


def _record_of(send: ContactSend, raw: Any) -> DeliveryRecord | None:
    """The stored record ``raw`` if it is one of this very request (the inputs may have changed since)."""
    if not isinstance(raw, dict) or raw.get("request") != send.identity():
        return None
    message_id = raw.get("message_id")
    return DeliveryRecord(
        request=raw["request"],
        attempted_at=float(raw.get("attempted_at") or 0.0),
        message_id=message_id if isinstance(message_id, str) and message_id else None,
    )


def send_once(
    send: ContactSend, ledger: Ledger | None, *, dialect: Dialect, at_least_once: bool, log: Log
) -> Plan[str]:
    """Send the card unless the ledger or the gateway shows an earlier try did; return its message id.

    Without a ledger, just send. When the gateway cannot be asked whether an earlier card arrived, the
    error propagates (the next try asks again), unless ``at_least_once`` says to send anyway.
    """
    request = dialect.send_request(send)  # what the dialect cannot carry fails before any record or request
    prior = ledger.recorded(send) if ledger else None
    if prior is not None and prior.message_id:
        log.info("An earlier try queued this card as %s; not sending it again", prior.message_id)
        return prior.message_id
    if ledger is not None and prior is not None:
        try:
            found = yield from dialect.find_card_plan(send, since=prior.attempted_at)
        except GatewayError as error:
            if not at_least_once:
                raise DeliveryUnknownError(
                    request.endpoint,
                    f"an earlier try's answer was lost, and asking the gateway about it failed: {error}",
                ) from error
            log.warning("Could not ask the gateway whether the earlier card arrived; at_least_once: sending")
            found = None
        if found:
            log.info("An earlier try's answer was lost, but the gateway has its card: %s", found)
            ledger.record_sent(prior, found)
            return found
        log.warning("An earlier try's answer was lost and the gateway shows no such card; sending again")
    record = ledger.record_intent(send) if ledger else None
    result = yield Call(request, dialect.parse_send)
    if ledger is not None and record is not None:
        ledger.record_sent(record, result.id)
    if result.job_id is not None:
        log.warning("The gateway took the card as job %s: queued, with no message id yet", result.job_id)
    else:
        log.info("Chat API queued message %s (%s)", result.id, result.message or "no message")
    return result.id
