"""The record of sends across Airflow task retries (the ledger), and the plans of a send around it.

Every send crosses :func:`send_plan`: a user's ``hook.send_contact()``, the notifier, the operator and
each recipient of a fan-out. Without a ledger it is the request and nothing more. With one (the
operators'), :func:`prepare_plan` first settles what earlier tries left unknown, from one look at the
gateway, and each send asks the ledger whether an earlier try queued its card; the ledger records the
intents before the requests and the outcomes after them. A single send is a batch of one
(:func:`single_send_plan`).

The ledger keeps a send at most once, and again after a clear.

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
import math
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from airflow_provider_chatapi._protocol.http import Call
from airflow_provider_chatapi._protocol.reconcile import CANNOT_TELL, UNTIED_MARGIN, Intent, LostSend, Verdicts
from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import DeliveryUnknownError, GatewayError, NotSentError, _first_few

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_chatapi._protocol.dialect import Dialect
    from airflow_provider_chatapi._protocol.http import ApiRequest, Plan
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = [
    "LEDGER_KEY",
    "WAVE_BYTES",
    "WAVE_SIZE",
    "DeliveryRecord",
    "Ledger",
    "Log",
    "StateStore",
    "prepare_plan",
    "reconcile_plan",
    "send_plan",
    "single_send_plan",
]

LEDGER_KEY = "chatapi_send_contact"
WAVE_SIZE = 400
"""Most recipients in one wave: at most this many outcomes are unknown after a crash."""
WAVE_BYTES = 56_000
"""Most bytes of entries one wave may need (chat ids, and 96 bytes each for a message id and 16 for the digest,
the mark and the JSON quoting): its key stays under the 65,535 bytes above which Airflow warns, however long the
chat ids. 1msg's wamid ids are about 60 bytes."""
_ENTRY_ALLOWANCE = 96 + 16  # bytes an entry may take beside its chat id
_DIGEST_LENGTH = 8  # base64 of 6 bytes: a changed request is told from the recorded one, in 8 bytes
_TIED, _UNTIED, _SENT, _SENT_HERE, _NOT_SENT = "?", "~", "=", "*", "-"  # the mark after an entry's digest


class StateStore(Protocol):
    """What this module needs of Airflow's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class DeliveryRecord(NamedTuple):
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
        return self._replace(intent=None, message_id=message_id)

    def nothing_queued(self) -> DeliveryRecord:
        return self._replace(intent=None, not_sent=True)

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
            return cls(chat_id, digest, Intent(at, tied=True) if mark == _TIED else Intent.on_worker_clock(at))
        if mark in (_SENT, _SENT_HERE) and rest:
            return cls(chat_id, digest, message_id=rest.replace(_SENT_HERE, chat_id, 1) if mark == _SENT_HERE else rest)
        return cls(chat_id, digest, not_sent=True) if mark == _NOT_SENT and not rest else None


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
    :meth:`before_wave` and :meth:`after_wave` around each of :meth:`waves`; :func:`send_plan`
    asks :meth:`recorded` before each request and tells :meth:`record` what came of it.
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
        self.shared = False  # whether it holds several recipients' sends (a card naming no chat could be any's)
        self.offset: float | None = None  # the gateway's clock (seconds to add to ours): the intents go on it
        self._store = store
        self._generation = generation
        self._lost_since = lost_since
        self._records: dict[str, DeliveryRecord] = {}
        self._unknown: dict[str, str] = {}  # why the gateway cannot tell, by chat
        self._digests: dict[str, str] = {}  # of the sends :meth:`prepare` took, by chat
        self._sends: Sequence[ContactSend] = ()
        self._waves: list[tuple[int, int]] = []
        self._mine: dict[str, bool] = {}  # chats whose records this try made, for its keys: True until written
        self._keys: dict[int, str] = {}  # this try's key of each wave written, by the wave's start
        self._voided: list[str] = []  # keys to be emptied at this try's first write: the record stays small
        if store is not None and try_number != 1:  # a first try has nothing to read
            try_number = self._load(store, try_number)
        self._prefix = f"{LEDGER_KEY}:{try_number or 1}"

    @property
    def owners(self) -> Mapping[str, str]:
        """Each message id on record, and the chat it went to: never to be taken for another chat's card."""
        return {record.message_id: chat for chat, record in self._records.items() if record.message_id}

    def prepare(self, sends: Sequence[ContactSend]) -> list[LostSend]:
        """Take the try's sends, in order, and cut them into waves; return those an earlier try lost."""
        self._sends, self.shared = sends, len(sends) > 1
        self._waves, start, size = [], 0, 0
        for index, send in enumerate(sends):  # at most WAVE_SIZE sends and WAVE_BYTES of entries a wave
            entry = len(send.chat_id.encode()) + _ENTRY_ALLOWANCE
            if index > start and (index - start == WAVE_SIZE or size + entry > WAVE_BYTES):
                self._waves.append((start, index))
                start, size = index, 0
            size += entry
        self._waves.append((start, len(sends)))
        self._digests = {send.chat_id: _digest(send) for send in sends}
        for send in sends:
            if self._lost_since is not None and self._counting(send) is None:  # no store: lost since then
                self.record(DeliveryRecord(send.chat_id, self._digests[send.chat_id], self._lost_since))
        return [LostSend(send, record.intent) for send in sends if (record := self._counting(send)) and record.intent]

    def settle(self, verdicts: Verdicts) -> None:
        """Note what the gateway showed of lost sends: found (their ids), absent, or it cannot tell."""
        self.offset = self.offset if verdicts.offset is None else verdicts.offset
        self._unknown.update(verdicts.unknown)
        for chat, message_id in verdicts.found.items():
            self.record(self._records[chat].sent(message_id))
        for chat in verdicts.absent:
            self.record(self._records[chat].nothing_queued())

    def recorded(self, send: ContactSend) -> DeliveryRecord | None:
        """What counts on record for this very request: an earlier try's id, or the intent of this try's send.

        :raises DeliveryUnknownError: the gateway could not tell whether the earlier try's card arrived.
        """
        if send.chat_id in self._unknown:
            raise DeliveryUnknownError("sendContact", f"{CANNOT_TELL}: {self._unknown[send.chat_id]}")
        return self._counting(send)

    def record(self, record: DeliveryRecord) -> None:
        """Note what became of a send: its id, or that nothing was queued (written with its wave)."""
        self._records[record.chat_id] = record
        self._mine[record.chat_id] = True

    def waves(self) -> list[tuple[int, int]]:
        """The waves of the sends :meth:`prepare` took: (start, stop) in the batch's order."""
        return self._waves

    def before_wave(self, start: int, stop: int) -> None:
        """Write, in one call, the intent of every send of the wave that nothing on record covers."""
        now, offset = time.time(), self.offset
        intent = (
            Intent(math.floor(now), False, UNTIED_MARGIN) if offset is None else Intent(math.floor(now + offset), True)
        )
        for send in self._sends[start:stop]:
            if self._counting(send) is None:
                self.record(DeliveryRecord(send.chat_id, self._digests[send.chat_id], intent))
        self._write(start, stop)

    def after_wave(self, start: int, stop: int) -> None:
        """Write the wave's outcomes; after the last wave, mark the job done if every send has its card."""
        self._write(start, stop, last=stop == len(self._sends))

    def _load(self, store: StateStore, try_number: int | None) -> int:
        """Take every earlier try's keys, in the order they were written, each chat's latest entry winning;
        nothing written in a generation whose job was done counts after a later clear (the user asked for
        the job again). Return this try's number (when unknown: the first under which no try wrote)."""
        written: dict[str, dict[str, Any]] = {}
        for earlier in range(1, try_number) if try_number else itertools.count(1):
            for index in itertools.count():
                name = f"{LEDGER_KEY}:{earlier}:{index}"
                value = store.get(name)
                if not (isinstance(value, dict) and type(value.get("g")) is int and isinstance(value.get("r"), dict)):
                    break
                written[name] = value
            if try_number is None and index == 0:  # no key of this try: the first free number
                try_number = earlier
                break
        done = max((value["g"] for value in written.values() if value.get("d") is True), default=-1)
        for name, value in written.items():
            voided = value["g"] <= done < self._generation
            if voided and value["r"]:
                self._voided.append(name)
            for chat, entry in value["r"].items():
                if voided:
                    self._records.pop(chat, None)  # and whatever an earlier entry of the chat said
                elif record := DeliveryRecord.decoded(chat, entry):
                    self._records[chat] = record
        assert try_number is not None
        return try_number

    def _write(self, start: int, stop: int, *, last: bool = False) -> None:
        """Write the records this try made of the wave's sends under the wave's key (this try's next key, at the
        wave's first write), if any is not written yet; with the done mark when ``last`` and every send of the
        batch has its card."""
        if self._store is None:
            return
        wave = [send.chat_id for send in self._sends[start:stop]]
        done = last and all([(kept := self._counting(send)) and kept.message_id is not None for send in self._sends])
        if not done and not any([self._mine.get(chat) for chat in wave]):
            return
        for name in self._voided:  # a clear after a done job: none of it counts, so none of it is kept
            self._store.set(name, {"g": self._generation, "r": {}})
        self._voided.clear()
        key = self._keys.setdefault(start, f"{self._prefix}:{len(self._keys)}")
        entries = {chat: self._records[chat].encoded() for chat in wave if chat in self._mine}
        self._store.set(key, {"g": self._generation, "r": entries, **({"d": True} if done else {})})
        self._mine.update(dict.fromkeys(entries, False))

    def _counting(self, send: ContactSend) -> DeliveryRecord | None:
        """The record of this very request, if it says something: an id, or an intent."""
        record = self._records.get(send.chat_id)
        return None if record is None or record.not_sent or record.digest != self._digests[send.chat_id] else record


def _digest(send: ContactSend) -> str:
    """What tells one request from another, in 8 bytes. The contacts are compared as a set: the same cards in
    another order are the same message to the recipient, and must not be sent again."""
    identity = {
        "chat_id": send.chat_id,
        "phone": send.phone,
        "contacts": sorted([json.dumps(card, sort_keys=True) for card in send.cards]),
        "contact_ids": sorted(send.contact_ids),
        "quoted_message_id": send.quoted_message_id,
    }
    text = json.dumps(identity, sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.blake2b(text, digest_size=6).digest()).decode()


# ---- the plans around the record ---------------------------------------------------------------


class Log(Protocol):
    """What :func:`send_plan` needs of a logger (a stdlib or an Airflow logger)."""

    def debug(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def info(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...


def send_plan(
    send: ContactSend, request: ApiRequest, *, dialect: Dialect, ledger: Ledger | None, log: Log
) -> Plan[SendResult]:
    """Make ``request`` (``send`` as the dialect built it), unless the ledger or the gateway shows that an
    earlier try queued its card; return what was queued.

    When the gateway cannot tell whether an earlier card arrived, this fails with ``DeliveryUnknownError``
    (the next try asks again), unless the ledger's ``at_least_once`` says to send anyway.
    """
    record = ledger.recorded(send) if ledger else None  # with a ledger: an earlier try's id, or our intent
    if ledger and record and record.message_id is not None:
        # A batch's line per card goes to DEBUG: its reconciliation, and its summary, said it once for all.
        (log.debug if ledger.shared else log.info)(
            "An earlier try queued this card as %s; not sending it again", record.message_id
        )
        return SendResult(
            id=record.message_id, sent=True, message="queued by an earlier try", queue_number=None, earlier_try=True
        )
    try:
        result: SendResult = yield Call(request, dialect.parse_send)
    except NotSentError:
        if ledger and record:
            ledger.record(record.nothing_queued())  # the next try sends at once, with nothing to look up
        raise
    except DeliveryUnknownError:
        if ledger and record and record.intent and not record.intent.tied:
            # Placed on the gateway's clock now, through this worker's own clock: a retry on a worker whose
            # clock differs still looks for the card from the right second.
            offset = yield from dialect.clock_plan()
            if offset is not None:
                ledger.record(record._replace(intent=Intent(math.floor(record.intent.at + offset), tied=True)))
        raise
    if ledger and record:
        ledger.record(record._replace(intent=None, message_id=result.id))
    if result.job_id is not None:
        log.warning("The gateway took the card as job %s: queued, with no message id yet", result.job_id)
    else:  # at DEBUG: a caller of the hook has the result; the operators log it for the task log
        log.debug("Chat API queued message %s (%s)", result.id, result.message or "no message")
    return result


def single_send_plan(send: ContactSend, *, dialect: Dialect, ledger: Ledger | None, log: Log) -> Plan[SendResult]:
    """One send: the request, and with a ledger, the batch of one, prepared, and recorded before and after
    its request. A lone send reads the gateway's clock only if its answer is lost (:func:`send_plan`)."""
    request = dialect.send_request(send)  # what the dialect cannot carry fails before any record or request
    if ledger is not None:
        if lost := ledger.prepare([send]):
            yield from reconcile_plan(lost, dialect=dialect, ledger=ledger, log=log)
        ledger.before_wave(0, 1)
    try:
        return (yield from send_plan(send, request, dialect=dialect, ledger=ledger, log=log))
    finally:
        if ledger is not None:
            ledger.after_wave(0, 1)


def prepare_plan(sends: Sequence[ContactSend], *, dialect: Dialect, ledger: Ledger, log: Log) -> Plan[None]:
    """Before a batch's first send: settle every send an earlier try lost, in one look at the gateway; or,
    with none lost, read the gateway's clock, on which the try's intents are then recorded (so that a
    retry on another worker, whose clock may differ, still places them right)."""
    if lost := ledger.prepare(sends):
        yield from reconcile_plan(lost, dialect=dialect, ledger=ledger, log=log)
    elif len(sends) > 1:
        ledger.offset = yield from dialect.clock_plan()


def reconcile_plan(lost: Sequence[LostSend], *, dialect: Dialect, ledger: Ledger, log: Log) -> Plan[None]:
    """Ask the gateway what became of the lost sends, note it in the ledger, and say so in a line or two.

    When the gateway cannot tell, a send fails rather than risk a second card, unless the ledger's
    ``at_least_once`` says to send it again.
    """
    try:
        verdicts = yield from dialect.reconcile_plan(lost, owners=ledger.owners, shared=ledger.shared)
    except GatewayError as error:
        verdicts = Verdicts(unknown={item.send.chat_id: f"asking the gateway failed: {error}" for item in lost})
    unknown = _first_few([f"{chat}: {reason}" for chat, reason in verdicts.unknown.items()], separator="; ")
    if verdicts.unknown and ledger.at_least_once:
        log.warning(
            "Could not tell whether %d earlier card(s) arrived (%s); at_least_once: sending them again",
            len(verdicts.unknown),
            unknown,
        )
        verdicts.absent.update(verdicts.unknown)
        verdicts.unknown.clear()
    ledger.settle(verdicts)
    if len(lost) == 1:
        for found in verdicts.found.values():
            log.info("An earlier try's outcome was unknown, but the gateway has its card: %s", found)
        if verdicts.absent:
            log.warning("An earlier try's outcome was unknown, and the gateway shows no such card; sending it")
        for reason in verdicts.unknown.values():
            log.warning("%s: %s", CANNOT_TELL.capitalize(), reason)
        return
    log.info(
        "Earlier tries' outcomes were unknown for %d cards: %d found at the gateway (not sent again), %d not there "
        "(sending them), %d cannot tell",
        *map(len, (lost, verdicts.found, verdicts.absent, verdicts.unknown)),
    )
    if verdicts.unknown:
        log.warning("Cannot tell whether these cards arrived, so none is sent again: %s", unknown)
