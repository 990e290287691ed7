"""The record of sends across Airflow task retries: at most once, and again after a clear.

The gateway has no idempotency key, so a try whose answer was lost cannot know whether its card was
queued. On Airflow 3.3+ each task instance has a ``task_state_store`` that outlives its tries (and its
clears); this module keeps a compact record there, per recipient chat: a digest of the request, and
either the intent (when it was about to be sent, on the gateway's clock where an answer tied the clocks),
or the message id the gateway gave it, or the mark that the gateway certainly queued nothing. A later
try reads it back:

- an id on record: the card was sent; return the id without sending;
- an intent without an id (lost): ask the gateway for the card since the intent (:mod:`.reconcile`, one
  look for every lost send of a batch); take its id if found, send again only if it is certainly absent;
- no record, a not-sent mark, or a record of a different request (the inputs changed): send.

A fan-out is recorded in waves of :data:`WAVE_SIZE` recipients, one store key each: the intents of a
wave are written before its first request and its outcomes after its last, so a crash leaves at most
one wave's outcomes unknown, and no key nears Airflow's 64 KB warning (an entry is about 60 bytes).

A clear of *this* task instance starts a new generation (the caller derives it from the instance's
``max_tries``, which a clear raises and a retry leaves alone; clearing other tasks of the run changes
nothing). What it means depends on how the last generation ended:

- it succeeded (the job was done): the user asks to do it again, so what was sent before counts as absent;
- it failed: the user asks to finish the job, so cards on record still count and are not sent again, and
  only the recipients not served are sent to (after reconciling any unknown outcome).

:func:`~.delivery.send_plan` reads and writes these records around the one request of a send.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_chatapi._protocol.clock import Intent, intent_now
from airflow_provider_chatapi._protocol.reconcile import CANNOT_TELL, LostSend
from airflow_provider_chatapi.exceptions import DeliveryUnknownError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_chatapi._protocol.reconcile import Verdicts
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["LEDGER_KEY", "WAVE_SIZE", "BatchLedger", "DeliveryLedger", "DeliveryRecord", "Ledger", "StateStore"]

LEDGER_KEY = "chatapi_send_contact"
WAVE_SIZE = 400
"""Recipients per record key of a fan-out: at most this many outcomes are unknown after a crash."""
_DIGEST_LENGTH = 8  # base64 of 6 bytes: a changed request is told from the recorded one, in 8 bytes
_TIED, _UNTIED, _SENT, _SENT_HERE, _NOT_SENT = "?", "~", "=", "*", "-"  # the mark after an entry's digest


class StateStore(Protocol):
    """What this module needs of Airflow's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One send as recorded: its chat, the digest of its request, and its intent (while the outcome is
    unknown), or its message id, or that the gateway certainly queued nothing."""

    chat_id: str
    digest: str
    intent: Intent | None = None
    message_id: str | None = None
    not_sent: bool = False

    @property
    def lost(self) -> bool:
        """Whether the send was about to be made and nothing says what came of it."""
        return self.message_id is None and not self.not_sent

    def sent(self, message_id: str) -> DeliveryRecord:
        return replace(self, intent=None, message_id=message_id)

    def nothing_queued(self) -> DeliveryRecord:
        return replace(self, intent=None, not_sent=True)

    def encoded(self) -> str:
        """The entry as stored: the digest, a mark, and the intent's second or the message id (with the
        chat, which classic ids repeat, left out)."""
        if self.message_id is not None:
            if self.chat_id in self.message_id and _SENT_HERE not in self.message_id:
                return f"{self.digest}{_SENT_HERE}{self.message_id.replace(self.chat_id, _SENT_HERE, 1)}"
            return f"{self.digest}{_SENT}{self.message_id}"
        if self.not_sent or self.intent is None:
            return f"{self.digest}{_NOT_SENT}"
        return f"{self.digest}{_TIED if self.intent.tied else _UNTIED}{self.intent.at}"

    @classmethod
    def decoded(cls, chat_id: str, entry: Any) -> DeliveryRecord | None:
        """The record of an entry as stored; None for anything this module did not write."""
        if not isinstance(entry, str) or len(entry) <= _DIGEST_LENGTH:
            return None
        digest, mark, rest = entry[:_DIGEST_LENGTH], entry[_DIGEST_LENGTH], entry[_DIGEST_LENGTH + 1 :]
        if mark in (_TIED, _UNTIED) and rest.isdigit():
            return cls(chat_id, digest, intent=Intent(int(rest), tied=mark == _TIED))
        if mark == _SENT and rest:
            return cls(chat_id, digest, message_id=rest)
        if mark == _SENT_HERE and rest:
            return cls(chat_id, digest, message_id=rest.replace(_SENT_HERE, chat_id, 1))
        if mark == _NOT_SENT and not rest:
            return cls(chat_id, digest, not_sent=True)
        return None


class Ledger(Protocol):
    """Where :func:`~.delivery.send_plan` keeps the records of its sends, and what it does when the gateway
    cannot say whether an earlier try's card arrived."""

    at_least_once: bool
    """Send again when the gateway cannot tell, rather than fail: a card may arrive twice, never zero times."""

    @property
    def owners(self) -> Mapping[str, str]:
        """Each message id on record, and the chat it went to: never to be taken for another chat's card."""
        ...

    @property
    def shared(self) -> bool:
        """Whether the ledger holds several recipients' sends (a card without a chat cannot be told apart)."""
        ...

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        """What an earlier try of this very request left that still counts: an id, or a lost intent.

        :raises DeliveryUnknownError: the gateway could not tell whether the earlier try's card arrived.
        """
        ...

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        """Note that this request is about to be sent; called before the POST."""
        ...

    def record(self, record: DeliveryRecord) -> None:
        """Note what became of a send: its id, or that nothing was queued."""
        ...

    def settle(self, verdicts: Verdicts) -> None:
        """Note what the gateway showed of lost sends: found (their ids), absent, or it cannot tell."""
        ...

    def complete(self) -> None:
        """Note that the task did its job in this generation: a later clear asks for it again."""
        ...


class _Records:
    """What both ledgers keep in memory: the records that count in this generation, by chat; the message
    ids' owners; the gateway's clock; and the sends the gateway could not tell about."""

    def __init__(self, store: StateStore, key: str, *, generation: int, at_least_once: bool) -> None:
        self.at_least_once = at_least_once
        self._store = store
        self._key = key
        self._generation = generation
        self._records: dict[str, DeliveryRecord] = {}
        self._owners: dict[str, str] = {}
        self._offset: float | None = None
        self._unknown: dict[str, str] = {}
        self._digests: dict[str, str] = {}

    @property
    def owners(self) -> Mapping[str, str]:
        return self._owners

    def _load(self, waves: Sequence[Any]) -> int:
        """Take the records of stored ``waves`` that still count: a later write wins, and a clear after a
        done job voids the ids sent before it. Return the latest write's sequence number (0: none)."""
        done = _done_through(self._store, self._key)
        ordered = sorted((wave for wave in waves if _is_wave(wave)), key=lambda wave: wave.get("s", 0))
        for wave in ordered:
            voided = int(wave["g"]) <= done < self._generation
            for chat, entry in wave["r"].items():
                record = DeliveryRecord.decoded(chat, entry)
                if record is not None and not (voided and record.message_id):
                    self._keep(record)
        return ordered[-1].get("s", 0) if ordered else 0

    def _keep(self, record: DeliveryRecord) -> None:
        earlier = self._records.get(record.chat_id)
        if earlier is not None and earlier.message_id:
            self._owners.pop(earlier.message_id, None)
        self._records[record.chat_id] = record
        if record.message_id:
            self._owners[record.message_id] = record.chat_id

    def _digest(self, send: ContactSend) -> str:
        digest = self._digests.get(send.chat_id)
        if digest is None:
            text = json.dumps(send.identity(), sort_keys=True).encode()
            digest = base64.urlsafe_b64encode(hashlib.blake2b(text, digest_size=6).digest()).decode()
            self._digests[send.chat_id] = digest
        return digest

    def _counting(self, send: ContactSend) -> DeliveryRecord | None:
        """The record of this very request, if it says something: an id, or a lost intent."""
        record = self._records.get(send.chat_id)
        if record is None or record.not_sent or record.digest != self._digest(send):
            return None
        return record

    def _recorded(self, send: ContactSend) -> DeliveryRecord | None:
        reason = self._unknown.get(send.chat_id)
        if reason is not None:
            raise DeliveryUnknownError("sendContact", f"{CANNOT_TELL}: {reason}")
        return self._counting(send)

    def _new_intent(self, send: ContactSend) -> DeliveryRecord:
        return DeliveryRecord(send.chat_id, self._digest(send), intent=intent_now(self._offset))

    def _settle(self, verdicts: Verdicts) -> set[str]:
        """Apply the verdicts; return the chats whose records changed."""
        if verdicts.offset is not None:
            self._offset = verdicts.offset
        self._unknown.update(verdicts.unknown)
        changed = set(verdicts.found) | verdicts.absent
        for chat, message_id in verdicts.found.items():
            self._keep(self._records[chat].sent(message_id))
        for chat in verdicts.absent:
            self._keep(self._records[chat].nothing_queued())
        return changed

    def _wave(self, chats: Sequence[str], sequence: int) -> dict[str, Any]:
        entries = {chat: self._records[chat].encoded() for chat in chats if chat in self._records}
        return {"g": self._generation, "s": sequence, "r": entries}

    def complete(self) -> None:
        self._store.set(_done_key(self._key), self._generation)


class DeliveryLedger(_Records):
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
        super().__init__(store, key, generation=generation, at_least_once=at_least_once)
        if not first_try:  # nothing can be on record yet: spare the store a read
            self._load([store.get(key)])

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        return self._recorded(send)

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        record = self._new_intent(send)
        self.record(record)
        return record

    def record(self, record: DeliveryRecord) -> None:
        self._keep(record)
        self._store.set(self._key, self._wave([record.chat_id], 0))

    def settle(self, verdicts: Verdicts) -> None:
        for chat in self._settle(verdicts):
            self._store.set(self._key, self._wave([chat], 0))


class BatchLedger(_Records):
    """The records of a fan-out, in waves of :data:`WAVE_SIZE` recipients under ``key:0``, ``key:1``, …,
    listed under ``key``. It is read once; :meth:`prepare` says which sends are lost; the batch runner
    calls :meth:`before_wave` (intents) and :meth:`after_wave` (outcomes) around each wave."""

    wave_size = WAVE_SIZE

    def __init__(
        self,
        store: StateStore,
        key: str = f"{LEDGER_KEY}:batch",
        *,
        first_try: bool = False,
        generation: int = 0,
        at_least_once: bool = False,
    ) -> None:
        super().__init__(store, key, generation=generation, at_least_once=at_least_once)
        self._sends: Sequence[ContactSend] = ()
        self._fresh: set[str] = set()  # intents this try wrote: not lost, about to be sent
        self._changed: set[str] = set()  # chats whose records are not written yet
        self._sequence = 0
        self._listed = -1  # waves the stored list names
        if not first_try:
            listing = store.get(key)
            self._listed = listing.get("waves", -1) if isinstance(listing, dict) else -1
            waves = [store.get(f"{key}:{index}") for index in range(max(self._listed, 0))]
            self._sequence = self._load(waves)

    @property
    def shared(self) -> bool:
        return len(self._sends) > 1

    def prepare(self, sends: Sequence[ContactSend]) -> list[LostSend]:
        """Take the batch's sends, in order; return those an earlier try lost, to reconcile first."""
        self._sends = sends
        lost = []
        for send in sends:
            record = self._counting(send)
            if record is not None and record.lost and record.intent is not None:
                lost.append(LostSend(send, record.intent))
        return lost

    def tie(self, offset: float | None) -> None:
        """Place the intents to come on the gateway's clock (``offset``: seconds to add to ours)."""
        self._offset = offset

    def settle(self, verdicts: Verdicts) -> None:
        self._changed |= self._settle(verdicts)

    def before_wave(self, start: int, stop: int) -> None:
        """Write, in one call, the intent of every send of the wave that nothing on record covers."""
        waves = -(-len(self._sends) // self.wave_size)
        if self._listed != waves:
            self._store.set(self._key, {"v": 2, "waves": waves})
            self._listed = waves
        for send in self._sends[start:stop]:
            if self._counting(send) is None:
                self._keep(self._new_intent(send))
                self._fresh.add(send.chat_id)
                self._changed.add(send.chat_id)
        self._write(start, stop)

    def after_wave(self, start: int, stop: int) -> None:
        """Write the wave's outcomes."""
        self._write(start, stop)

    def _write(self, start: int, stop: int) -> None:
        chats = [send.chat_id for send in self._sends[start:stop]]
        if self._changed.isdisjoint(chats):
            return
        self._sequence += 1
        self._store.set(f"{self._key}:{start // self.wave_size}", self._wave(chats, self._sequence))
        self._changed.difference_update(chats)

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        if send.chat_id in self._fresh:
            return None
        return self._recorded(send)

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        self._fresh.discard(send.chat_id)
        return self._records[send.chat_id]

    def record(self, record: DeliveryRecord) -> None:
        self._keep(record)
        self._changed.add(record.chat_id)


def _is_wave(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("g"), int) and isinstance(value.get("r"), dict)


def _done_key(key: str) -> str:
    return f"{key}:done"


def _done_through(store: StateStore, key: str) -> int:
    """The last generation in which the task did its job (-1: none)."""
    done = store.get(_done_key(key))
    return done if isinstance(done, int) and not isinstance(done, bool) else -1
