"""The record of sends across Airflow task retries: at most once, and again after a clear.

The gateway has no idempotency key, so a try whose answer was lost cannot know whether its card was
queued. On Airflow 3.3+ each task instance has a ``task_state_store`` that outlives its tries (and its
clears); this module keeps a compact record there, **per recipient chat**: a digest of the request, and
either the intent (when it was about to be sent, on the gateway's clock where an answer tied the clocks),
or the message id the gateway gave it, or the mark that the gateway certainly queued nothing. A later
try reads it back:

- an id on record: the card was sent; return the id without sending;
- an intent without an id (lost): ask the gateway for the card since the intent (:mod:`.reconcile`, one
  look for every lost send of a batch); take its id if found, send again only if it is certainly absent;
- no record, a not-sent mark, or a record of a different request (the inputs changed): send.

A record is found by its chat, never by its place in a list: every try writes keys of its own
(``chatapi_send_contact:<try>:<n>``) and never overwrites another try's, and a retry reads every earlier
try's keys and keeps each chat's latest entry. So a retry that gets the recipients in another order, or
a subset, or more of them, still finds every chat an earlier try served. A single send is a batch of one.

A try writes its sends in waves (at most :data:`WAVE_SIZE` recipients, and at most :data:`WAVE_BYTES`
of entries whatever the chat ids' length): the intents of a wave in one write before its first request,
its outcomes in one write after its last. A crash leaves at most one wave's outcomes unknown, and no key
nears Airflow's 64 KB warning. A single send on its first try writes twice: the intent, then its id.

A clear of *this* task instance starts a new generation (the caller derives it from the instance's
``max_tries``, which a clear raises and a retry leaves alone; clearing other tasks of the run changes
nothing). The write that finishes a generation's job is marked done, and what a clear means depends on it:

- the job was done: the user asks to do it again, so what was sent before counts as absent;
- it was not: the user asks to finish the job, so cards on record still count and are not sent again, and
  only the recipients not served are sent to (after reconciling any unknown outcome).

Before Airflow 3.3 there is no store: the ledger then lives in memory for one try, and a retry that is not
the first try of its generation takes every recipient as lost since the generation began, so that the
gateway's history, not a blind re-send, says what an earlier try (perhaps killed before it could say
anything) queued.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_chatapi._protocol.clock import Intent, intent_now
from airflow_provider_chatapi._protocol.reconcile import CANNOT_TELL, LostSend
from airflow_provider_chatapi.exceptions import DeliveryUnknownError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_chatapi._protocol.reconcile import Verdicts
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["LEDGER_KEY", "WAVE_BYTES", "WAVE_SIZE", "DeliveryRecord", "Ledger", "StateStore"]

LEDGER_KEY = "chatapi_send_contact"
WAVE_SIZE = 400
"""Most recipients in one wave: at most this many outcomes are unknown after a crash."""
WAVE_BYTES = 56_000
"""Most bytes of entries one wave may need (chat ids, and an id of up to :data:`_ID_ALLOWANCE` each): its
key stays under the 65,535 bytes above which Airflow warns, however long the chat ids."""
_ID_ALLOWANCE = 96  # bytes a message id may take in an entry: 1msg's wamid ids are about 60
_ENTRY_OVERHEAD = 16  # the digest, the mark and the JSON quoting around a chat and its entry
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
        if mark in (_TIED, _UNTIED) and rest.isascii() and rest.isdigit():
            at = int(rest)
            return cls(chat_id, digest, intent=Intent(at, tied=True) if mark == _TIED else Intent.on_worker_clock(at))
        if mark == _SENT and rest:
            return cls(chat_id, digest, message_id=rest)
        if mark == _SENT_HERE and rest:
            return cls(chat_id, digest, message_id=rest.replace(_SENT_HERE, chat_id, 1))
        if mark == _NOT_SENT and not rest:
            return cls(chat_id, digest, not_sent=True)
        return None


class _MemoryStore(dict[str, Any]):
    """Where a ledger keeps its records when Airflow gives the task no state store (before 3.3)."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


@dataclass
class _Wave:
    """Sends ``start`` to ``stop`` of this try's batch, and the chats this try wrote under its ``key``."""

    start: int
    stop: int
    key: str | None = None
    members: dict[str, None] = field(default_factory=dict)  # an ordered set: the chats in the key


class Ledger:
    """The record of a task instance's sends (one, or a fan-out's), kept in its ``task_state_store``.

    :param store: the task instance's store; None before Airflow 3.3 (the record then lasts one try).
    :param try_number: this try's number: its keys are its own, and every earlier try's are read. Unknown
        (None), the try takes the first number no try has written under, after reading those before it.
    :param generation: the task instance's clear generation.
    :param at_least_once: send again when the gateway cannot tell, rather than fail: a card may then
        arrive twice, never zero times.
    :param lost_since: when no store can say what earlier tries of this generation did (before 3.3, on a
        retry), the generation's start: every send is then taken as lost since it and looked for at the
        gateway before anything is sent.

    :meth:`prepare` takes the try's sends and says which are lost; the batch runner calls
    :meth:`before_wave` and :meth:`after_wave` around each of :meth:`waves`; :func:`~.delivery.send_plan`
    asks :meth:`recorded` and calls :meth:`record_intent` and :meth:`record` around each request.
    """

    def __init__(
        self,
        store: StateStore | None,
        *,
        try_number: int | None = None,
        generation: int = 0,
        at_least_once: bool = False,
        lost_since: Intent | None = None,
    ) -> None:
        self.at_least_once = at_least_once
        self.durable = store is not None
        """Whether the record outlives this try (Airflow 3.3+)."""
        self._store: StateStore = store if store is not None else _MemoryStore()
        self._generation = generation
        self._lost_since = lost_since
        self._records: dict[str, DeliveryRecord] = {}
        self._owners: dict[str, str] = {}
        self._offset: float | None = None
        self._unknown: dict[str, str] = {}
        self._digests: dict[str, str] = {}
        self._sends: Sequence[ContactSend] = ()
        self._waves: list[_Wave] = []
        self._fresh: set[str] = set()  # intents this try wrote: not lost, about to be sent
        self._changed: set[str] = set()  # chats whose records are not written yet
        self._keys_written = 0
        self._voided_keys: list[str] = []  # to be emptied at this try's first write: the record stays small
        if store is not None and try_number != 1:  # a first try has nothing to read
            try_number = self._load(store, try_number)
        self._prefix = f"{LEDGER_KEY}:{try_number or 1}"

    # ---- what the plans ask ---------------------------------------------------------------------

    @property
    def owners(self) -> Mapping[str, str]:
        """Each message id on record, and the chat it went to: never to be taken for another chat's card."""
        return self._owners

    @property
    def shared(self) -> bool:
        """Whether the ledger holds several recipients' sends (a card without a chat cannot be told apart)."""
        return len(self._sends) > 1

    def prepare(self, sends: Sequence[ContactSend]) -> list[LostSend]:
        """Take the try's sends, in order, and cut them into waves; return those an earlier try lost."""
        self._sends = sends
        self._waves = _waves(sends)
        lost = []
        for send in sends:
            record = self._counting(send)
            if record is None and self._lost_since is not None:
                record = DeliveryRecord(send.chat_id, self._digest(send), intent=self._lost_since)
                self._keep(record)
            if record is not None and record.lost and record.intent is not None:
                lost.append(LostSend(send, record.intent))
        return lost

    def tie(self, offset: float | None) -> None:
        """Place the intents to come on the gateway's clock (``offset``: seconds to add to ours)."""
        self._offset = offset

    def settle(self, verdicts: Verdicts) -> None:
        """Note what the gateway showed of lost sends: found (their ids), absent, or it cannot tell."""
        if verdicts.offset is not None:
            self._offset = verdicts.offset
        self._unknown.update(verdicts.unknown)
        for chat, message_id in verdicts.found.items():
            self._keep(self._records[chat].sent(message_id))
        for chat in verdicts.absent:
            self._keep(self._records[chat].nothing_queued())
        self._changed |= set(verdicts.found) | verdicts.absent

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        """What an earlier try of this very request left that still counts: an id, or a lost intent.

        :raises DeliveryUnknownError: the gateway could not tell whether the earlier try's card arrived.
        """
        if send.chat_id in self._fresh:
            return None
        reason = self._unknown.get(send.chat_id)
        if reason is not None:
            raise DeliveryUnknownError("sendContact", f"{CANNOT_TELL}: {reason}")
        return self._counting(send)

    def record_intent(self, send: ContactSend) -> DeliveryRecord:
        """The intent :meth:`before_wave` recorded for this send, which is now being made."""
        self._fresh.discard(send.chat_id)
        return self._records[send.chat_id]

    def record(self, record: DeliveryRecord) -> None:
        """Note what became of a send: its id, or that nothing was queued (written after its wave)."""
        self._keep(record)
        self._changed.add(record.chat_id)

    # ---- the waves ------------------------------------------------------------------------------

    def waves(self) -> list[tuple[int, int]]:
        """The waves of the sends :meth:`prepare` took: (start, stop) in the batch's order."""
        return [(wave.start, wave.stop) for wave in self._waves]

    def before_wave(self, start: int, stop: int) -> None:
        """Write, in one call, the intent of every send of the wave that nothing on record covers."""
        for send in self._sends[start:stop]:
            if self._counting(send) is None:
                self._keep(DeliveryRecord(send.chat_id, self._digest(send), intent=intent_now(self._offset)))
                self._fresh.add(send.chat_id)
                self._changed.add(send.chat_id)
        self._write(self._wave_at(start))

    def after_wave(self, start: int, stop: int) -> None:
        """Write the wave's outcomes; after the last wave, mark the job done if every send has its card."""
        self._write(self._wave_at(start), last=start == self._waves[-1].start)

    # ---- reading and writing the store ----------------------------------------------------------

    def _load(self, store: StateStore, try_number: int | None) -> int:
        """Take every earlier try's keys, in the order they were written, each chat's latest entry winning;
        nothing written in a generation whose job was done counts after a later clear (the user asked for
        the job again). Return this try's number (when unknown: the first under which no try wrote)."""
        written: dict[str, dict[str, Any]] = {}
        for earlier in range(1, try_number) if try_number else itertools.count(1):
            first = len(written)
            for index in itertools.count():
                name = f"{LEDGER_KEY}:{earlier}:{index}"
                value = store.get(name)
                if not _is_wave(value):
                    break
                written[name] = value
            if try_number is None and len(written) == first:
                try_number = earlier
                break
        done = max((value["g"] for value in written.values() if value.get("d") is True), default=-1)
        for name, value in written.items():
            voided = value["g"] <= done < self._generation
            if voided and value["r"]:
                self._voided_keys.append(name)
            for chat, entry in value["r"].items():
                record = DeliveryRecord.decoded(chat, entry)
                if voided:
                    self._forget(chat)  # and whatever an earlier entry of the chat said
                elif record is not None:
                    self._keep(record)
        assert try_number is not None
        return try_number

    def _wave_at(self, start: int) -> _Wave:
        return next(wave for wave in self._waves if wave.start == start)

    def _write(self, wave: _Wave, *, last: bool = False) -> None:
        chats = [send.chat_id for send in self._sends[wave.start : wave.stop] if send.chat_id in self._changed]
        done = last and all(self._is_served(send) for send in self._sends)
        if not chats and not done:
            return
        for name in self._voided_keys:  # a clear after a done job: none of it counts, so none of it is kept
            self._store.set(name, {"g": self._generation, "r": {}})
        self._voided_keys.clear()
        if wave.key is None:
            wave.key = f"{self._prefix}:{self._keys_written}"
            self._keys_written += 1
        wave.members.update(dict.fromkeys(chats))
        entries = {chat: self._records[chat].encoded() for chat in wave.members}
        value: dict[str, Any] = {"g": self._generation, "r": entries}
        if done:
            value["d"] = True
        self._store.set(wave.key, value)
        self._changed.difference_update(chats)

    # ---- the records in memory ------------------------------------------------------------------

    def _keep(self, record: DeliveryRecord) -> None:
        self._forget(record.chat_id)
        self._records[record.chat_id] = record
        if record.message_id:
            self._owners[record.message_id] = record.chat_id

    def _forget(self, chat: str) -> None:
        earlier = self._records.pop(chat, None)
        if earlier is not None and earlier.message_id:
            self._owners.pop(earlier.message_id, None)

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

    def _is_served(self, send: ContactSend) -> bool:
        record = self._counting(send)
        return record is not None and record.message_id is not None


def _waves(sends: Sequence[ContactSend]) -> list[_Wave]:
    """Cut the sends into waves of at most :data:`WAVE_SIZE` sends and :data:`WAVE_BYTES` of entries."""
    waves: list[_Wave] = []
    start, size = 0, 0
    for index, send in enumerate(sends):
        entry = len(send.chat_id.encode()) + _ID_ALLOWANCE + _ENTRY_OVERHEAD
        if index > start and (index - start == WAVE_SIZE or size + entry > WAVE_BYTES):
            waves.append(_Wave(start, index))
            start, size = index, 0
        size += entry
    waves.append(_Wave(start, len(sends)))
    return waves


def _is_wave(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("g"), int)
        and not isinstance(value.get("g"), bool)
        and isinstance(value.get("r"), dict)
    )
