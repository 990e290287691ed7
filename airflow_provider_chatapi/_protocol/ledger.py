"""The record of a send across Airflow task retries: at most once, and again after a clear.

The gateway has no idempotency key, so a try whose answer was lost cannot know whether its card was
queued. On Airflow 3.3+ each task instance has a ``task_state_store`` that outlives its tries (and its
clears); this module keeps a small record there: the request about to be sent, when, and the task
instance's clear generation (written *before* the POST), then the message id the gateway gave it, or the
mark that the gateway certainly queued nothing; and, once the task succeeds, that its job is done. A later
try reads it back:

- an id on record: the card was sent; return the id without sending;
- an intent without an id: ask the gateway (the chat's history, and the classic gateway's outbound
  queue) for a card matching the request since the intent; return its id if found, send again only if not;
- no record, a not-sent mark, or a record of a different request (the inputs changed): send.

A clear of *this* task instance starts a new generation (the caller derives it from the instance's
``max_tries``, which a clear raises and a retry leaves alone; clearing other tasks of the run changes
nothing). What it means depends on how the last generation ended:

- it succeeded (the job was done): the user asks to do it again, so what was sent before counts as absent;
- it failed: the user asks to finish the job, so cards on record still count and are not sent again, and
  only the recipients not served are sent to (after reconciling any unknown outcome).

An intent without an id (an unknown outcome) is always reconciled first, in any generation.

:func:`~.delivery.send_plan` reads and writes these records around the one request of a send.
"""

from __future__ import annotations

import time
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["LEDGER_KEY", "BatchLedger", "DeliveryLedger", "DeliveryRecord", "Ledger", "StateStore"]

LEDGER_KEY = "chatapi_send_contact"


class StateStore(Protocol):
    """What this module needs of Airflow's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class DeliveryRecord:
    """One send as recorded in the store: what was sent, when, in which clear generation, and its id
    once known (or that the gateway certainly queued nothing)."""

    request: dict[str, Any]
    attempted_at: float
    generation: int = 0
    message_id: str | None = None
    not_sent: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def sent(self, message_id: str) -> DeliveryRecord:
        return DeliveryRecord(self.request, self.attempted_at, self.generation, message_id)

    def nothing_queued(self) -> DeliveryRecord:
        return DeliveryRecord(self.request, self.attempted_at, self.generation, not_sent=True)


class Ledger(Protocol):
    """Where :func:`~.delivery.send_plan` keeps the record of one send, and what it does when the gateway
    cannot say whether an earlier try's card arrived."""

    at_least_once: bool
    """Send again when the gateway cannot be asked, rather than fail: a card may arrive twice, never zero times."""

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        """What an earlier try of this very request left that still counts: an id, or an intent to reconcile."""
        ...

    def claimed(self, send: ContactSend) -> Collection[str]:
        """Message ids on record for other sends: never to be taken for this one's card."""
        ...

    @property
    def shared(self) -> bool:
        """Whether the ledger holds several recipients' sends (a card without a chat cannot be told apart)."""
        ...

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        """Note that this request is about to be sent; called before the POST."""
        ...

    def record(self, record: DeliveryRecord) -> None:
        """Note what became of a send: its id, or that nothing was queued."""
        ...

    def complete(self) -> None:
        """Note that the task did its job in this generation: a later clear asks for it again."""
        ...


class DeliveryLedger:
    """The record of one send, kept in its task instance's state store under ``key``; every change is
    written at once. ``generation`` is the task instance's clear generation."""

    shared = False

    def __init__(
        self,
        store: StateStore,
        key: str = LEDGER_KEY,
        *,
        first_try: bool = False,
        generation: int = 0,
        at_least_once: bool = False,
    ) -> None:
        self.at_least_once = at_least_once
        self._store = store
        self._key = key
        self._first_try = first_try  # nothing can be on record yet: spare the store a read
        self._generation = generation

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        if self._first_try:
            return None
        done = _done_through(self._store, self._key)
        return _still_counts(send, self._store.get(self._key), self._generation, done)

    def claimed(self, send: ContactSend) -> Collection[str]:
        return frozenset()

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        record = DeliveryRecord(request=send.identity(), attempted_at=time.time(), generation=self._generation)
        self._store.set(self._key, record.to_json())
        return record

    def record(self, record: DeliveryRecord) -> None:
        self._store.set(self._key, replace(record, generation=self._generation).to_json())

    def complete(self) -> None:
        _mark_done(self._store, self._key, self._generation)


class BatchLedger:
    """The records of a batch of sends, one per recipient chat, under one key of the store.

    A batch to 200 recipients would otherwise cost 600 calls to the store. Instead it is read once;
    :meth:`begin` writes the intents of every send not tried before in one call, before the first POST,
    and :meth:`flush` writes every outcome in one call at the end. If the worker dies in between, the
    next try finds intents without ids and asks the gateway about each. A card sent again after a lost
    answer keeps its first intent time on record, which still covers it.
    """

    def __init__(
        self,
        store: StateStore,
        key: str = f"{LEDGER_KEY}:batch",
        *,
        first_try: bool = False,
        generation: int = 0,
        at_least_once: bool = False,
    ) -> None:
        raw = None if first_try else store.get(key)  # nothing can be on record yet: spare the store a read
        self.at_least_once = at_least_once
        self._store = store
        self._key = key
        self._generation = generation
        self._done = -1 if first_try else _done_through(store, key)
        self._records: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
        self._fresh: set[str] = set()
        self._owners = {  # each message id on record, and the chat it went to
            record["message_id"]: chat
            for chat, record in self._records.items()
            if isinstance(record, dict) and record.get("message_id")
        }

    @property
    def shared(self) -> bool:
        return len(self._records) > 1

    def begin(self, sends: list[ContactSend]) -> None:
        """Record, in one write, the intent of every send that no earlier try left a record of that counts."""
        now = time.time()
        for send in sends:
            if _still_counts(send, self._records.get(send.chat_id), self._generation, self._done) is None:
                self._records[send.chat_id] = DeliveryRecord(send.identity(), now, self._generation).to_json()
                self._fresh.add(send.chat_id)
        self._store.set(self._key, self._records)

    def flush(self) -> None:
        """Write every outcome recorded since :meth:`begin`."""
        self._store.set(self._key, self._records)

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        if send.chat_id in self._fresh:
            return None
        return _still_counts(send, self._records.get(send.chat_id), self._generation, self._done)

    def claimed(self, send: ContactSend) -> Collection[str]:
        return _OthersIds(self._owners, send.chat_id)

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        self._fresh.discard(send.chat_id)
        earlier = _still_counts(send, self._records[send.chat_id], self._generation, self._done)
        return earlier or DeliveryRecord(send.identity(), time.time(), self._generation)

    def record(self, record: DeliveryRecord) -> None:
        chat = record.request["chat_id"]
        earlier = self._records.get(chat)
        if isinstance(earlier, dict) and earlier.get("message_id"):
            self._owners.pop(earlier["message_id"], None)
        self._records[chat] = replace(record, generation=self._generation).to_json()
        if record.message_id:
            self._owners[record.message_id] = chat

    def complete(self) -> None:
        _mark_done(self._store, self._key, self._generation)


class _OthersIds(AbstractSet[str]):
    """The message ids on record for every chat but ``chat``: a view rather than a copy, so that each of a
    batch's sends looking them up costs one lookup, not a walk of the whole batch."""

    def __init__(self, owners: dict[str, str], chat: str) -> None:
        self._owners = owners
        self._chat = chat

    def __contains__(self, message_id: object) -> bool:
        owner = self._owners.get(message_id) if isinstance(message_id, str) else None
        return owner is not None and owner != self._chat

    def __iter__(self) -> Iterator[str]:
        return (message_id for message_id, owner in self._owners.items() if owner != self._chat)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _done_key(key: str) -> str:
    return f"{key}:done"


def _done_through(store: StateStore, key: str) -> int:
    """The last generation in which the task did its job (-1: none)."""
    done = store.get(_done_key(key))
    return done if isinstance(done, int) and not isinstance(done, bool) else -1


def _mark_done(store: StateStore, key: str, generation: int) -> None:
    store.set(_done_key(key), generation)


def _still_counts(send: ContactSend, raw: Any, generation: int, done_through: int) -> DeliveryRecord | None:
    """The stored record ``raw`` if it is of this very request and still says something about it in
    ``generation``, the task's job having been done last in ``done_through``."""
    if not isinstance(raw, dict) or raw.get("request") != send.identity() or raw.get("not_sent"):
        return None
    message_id = raw.get("message_id")
    record = DeliveryRecord(
        request=raw["request"],
        attempted_at=float(raw.get("attempted_at") or 0.0),
        generation=int(raw.get("generation") or 0),
        message_id=message_id if isinstance(message_id, str) and message_id else None,
    )
    if record.message_id and record.generation <= done_through < generation:
        return None  # sent by a job that was done before this clear: the clear asks for it again
    return record
