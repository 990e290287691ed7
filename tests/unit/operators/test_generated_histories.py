"""Generated histories of one task instance: a stateful property test of the exactly-once promise.

**The model.** One example is ONE task instance of ``SendContactOperator`` or ``SendContactToManyOperator``
(a :class:`Task`: classic or 1msg, its recipients, its cards, its ``retries``, the gateway's clock and
``Date`` header) that Airflow 3.3 runs try after try, every try with the same task state store. The
rules are what Airflow can do next: :meth:`Histories.first_try` (it draws the task too, so that the
shrinker can drop any later try); :meth:`Histories.retry` (only after a try that failed with an error
Airflow retries, or a killed worker, while tries are left: ``try_number <= max_tries``);
:meth:`Histories.clear` (after any try: ``max_tries = try_number + retries``, as Airflow's clear sets
it). Each try is a :class:`TryPlan`: the recipients (a fan-out's, in another order, a subset or a
superset of the first try's: naming a recipient twice is an ``InvalidInputError``, not legal input), the
chats the gateway refuses, faults on the next ``sendContact`` requests (refusals, 429, 503, answers lost
before or after queueing, odd but legal successes: ``"error": null``, extra fields, a 201) and on its
lookups (``messages``, the ``status`` probe), a worker killed at its Nth write to the store, the
worker's clock, and the time since the previous try. The test drives only public interfaces: the
operators' arguments, ``execute(context)`` and the stand-in's API; it never reads the store.

**What counts.** A *job* is what the user asked for: the first try starts one, and so does a clear after a
success (do it again); a retry, and a clear after a failure (finish it), go on with the job. A job's
cards are those the gateway accepted while its tries ran: ``gateway.messages`` grows in order and the
tries run one after another, so each try's cards are the messages appended while it ran. The invariants:

- no chat has more than one card of the job, and no card goes to a chat no try of the job named;
- after a successful try, each of its recipients has exactly one card of the job, and the ids returned
  are those cards' (so a card of an earlier job, or another chat's, is never taken for this one's);
- a failed fan-out accounts for every recipient (``FanOutError.failures`` and ``.queued``), and each id
  it reports queued is the recipient's one card of the job;
- a try fails without retries (``AirflowFailException``) only when the gateway refused one of its sends;
  any other failure is one Airflow retries (``DeliveryUnknownError``, a transient ``NotSentError``, or a
  ``FanOutError`` of those), or the killed worker.

**What it assumes of the operators** (a rewrite of the ledger must keep it, or change this test):
``execute(context)`` reads ``context["task_state_store"]`` (``get``/``set``) and ``context["ti"]``
(``try_number``, ``max_tries``: a clear's generation is ``max_tries - retries``), and lets a
``BaseException`` from ``set`` through; it returns the message id, or a fan-out's ids in recipient order;
a failure Airflow must not retry is an ``AirflowFailException`` raised from the ``ChatApiError`` (or
``FanOutError``, whose ``failures`` and ``queued`` are keyed by chat id), any other failure is raised as
it is; the provider reads the clock as ``time.time()`` (not ``from time import time``, ``time_ns`` or
``datetime.now``, which the worker's skew would not reach); with ``max_in_flight=1`` a fan-out sends one
request at a time.

**The clocks.** The provider reads the worker's clock through ``time.time()``, the stdlib function looked
up at each call; the stand-in reads its own through ``airflow_provider_chatapi.testing.time`` (its
``_now()``), an attribute that exists so that a test can set it. The test sets that attribute, for the
whole test, to a *world* clock that stands still while a try runs and jumps by the plan's ``later``
between tries; the gateway's clock is the world's plus its ``clock_offset``, as always. Only while a try
runs is ``time.time`` itself replaced, by the world's clock plus that try's worker offset. The stand-in
never reads ``time.time``, so the worker's skew does not move the gateway's clock and nothing needs
compensating; and with no wall clock in it, every run of an example is the same run, which Hypothesis
needs in order to shrink. (The HTTP timeouts and the retry pacing use monotonic clocks, which are left
alone; the hooks' retry waits are scaled down by the ``quick_retries`` fixture, and a 429 says
``Retry-After: 0``.) Requests are made one at a time (``max_in_flight=1``), so that faults land on the
same requests in every run.

**Profiles.** ``chatapi-normal`` (a fixed seed, a few hundred examples, well under a minute) runs in the
suite; ``CHATAPI_HYPOTHESIS=deep`` selects ``chatapi-deep`` (thousands, longer histories, and now and
then a fan-out of two waves and one recipient more than the ledger's wave size). A fan-out's ledger
writes its record in waves of at most ``ledger.WAVE_SIZE`` recipients; a task with ``small_waves`` sets it
to 3, so that a handful of recipients spans several waves. Both profiles shrink and
report one failure at a time (shrinking several takes minutes): to see what the machine finds behind the
one it reports, leave that failure's ingredient out with ``CHATAPI_HYPOTHESIS_OFF``, a comma-separated
list of ``worker_clock`` (every worker on the world's clock), ``no_date`` (the gateway always sends
``Date``), ``shared_number`` (no two cards of one number), ``error_null`` (no ``"error": null`` success),
``reorder`` (every try names the first try's recipients, in its order) and ``status_fault`` (no fault on
the ``status`` probe).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import random
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import httpx._transports.default
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import airflow_provider_chatapi.testing
from airflow_provider_chatapi._protocol import record as ledger_module
from airflow_provider_chatapi.exceptions import DeliveryUnknownError, FanOutError, NotSentError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.testing import Fault, QueuedMessage, StandInGateway
from tests.helpers import DyingStore, Killed, TaskInstance, needs_store

pytestmark = needs_store

# ---- settings ----------------------------------------------------------------------------------

_COMMON = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "print_blob": False,
    "report_multiple_bugs": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("chatapi-normal", max_examples=300, stateful_step_count=6, **_COMMON)
settings.register_profile("chatapi-deep", max_examples=4000, stateful_step_count=10, **_COMMON)
DEEP = os.environ.get("CHATAPI_HYPOTHESIS") == "deep"
OFF = frozenset(filter(None, os.environ.get("CHATAPI_HYPOTHESIS_OFF", "").replace(" ", "").split(",")))

# ---- the world -----------------------------------------------------------------------------------

_REAL_TIME = time.time
WORLD_START = 1_767_225_600.25  # 2026-01-01, a quarter past a second: Date headers truncate it
SMALL_WAVES = 3
WAVE_SIZE = ledger_module.WAVE_SIZE
BIG_FAN_OUT = 2 * WAVE_SIZE + 1
MAX_SMALL = 7  # recipients of a small fan-out
MAX_EXTRA = 2  # recipients a later try may add
CONNECTIONS = {"chatapi": "chatapi_default", "1msg": "chatapi_onemsg"}
CARDS: dict[str, dict[str, Any]] = {
    "one number": {"contact_ids": ["79009999999"]},
    "two numbers": {
        "contacts": [{"name": "Sales", "phone": "+7 900 999-99-99"}, {"name": "Support", "phone": "+7 900 888-88-88"}]
    },
    "two cards, one number": {
        "contacts": [{"name": "Sales", "phone": "+7 900 999-99-99"}, {"name": "Support", "phone": "+7 900 999-99-99"}]
    },
}
SEND_FAULTS: dict[str, Callable[[], Fault]] = {
    "ok": Fault,  # answered normally: moves the faults after it to later requests
    "sent: false": Fault.rejected,
    "429": lambda: Fault.rate_limited(retry_after=0),
    "503": Fault.unavailable,
    "500 after queueing": lambda: Fault.server_error(500, queued=True),
    "500 before queueing": lambda: Fault.server_error(500, queued=False),
    "reset after queueing": Fault.reset_after_queueing,
    "reset before queueing": Fault.reset_before_queueing,
    "ok, error: null": lambda: Fault.decorated({"error": None}),
    "ok, extra fields": lambda: Fault.decorated({"note": "accepted", "messageNumber": 7, "chatId": "0@c.us"}),
    "ok, 201": lambda: Fault.decorated(status=201),
}
LOOKUP_FAULTS: dict[str, tuple[str, Callable[[], Fault]]] = {
    "history 500": ("messages", lambda: Fault.server_error(500, queued=False)),
    "status 503": ("status", Fault.unavailable),  # still dated: the probe's answer gives the clock
    "status lost": ("status", Fault.reset_before_queueing),  # no answer, no clock
}


def phone(index: int) -> str:
    """The recipient numbered ``index``: the first try's are 0 to n - 1, a later try's additions follow."""
    return f"7901{index:07d}"


def chat(number: str) -> str:
    return f"{number}@c.us"


class WorldClock:
    """The world's clock, which stands still during a try; the gateway's runs on it, and a try's worker's
    runs on it plus that try's offset (see the module's docstring)."""

    def __init__(self) -> None:
        self.now = WORLD_START
        self.for_the_stand_in = types.SimpleNamespace(time=lambda: self.now)

    @contextlib.contextmanager
    def worker(self, offset: float) -> Iterator[None]:
        """While a try runs: ``time.time()`` is the worker's clock."""
        time.time = lambda: self.now + offset
        try:
            yield
        finally:
            time.time = _REAL_TIME


# ---- what is drawn -------------------------------------------------------------------------------


def _short_repr(value: Any) -> str:
    """A dataclass's repr with only the fields that differ from their defaults: a readable example."""
    shown = [
        f"{item.name}={getattr(value, item.name)!r}"
        for item in fields(value)
        if getattr(value, item.name) != item.default
    ]
    return f"{type(value).__name__}({', '.join(shown)})"


@dataclass(frozen=True)
class Task:
    """The task instance of one example."""

    dialect: str = "chatapi"
    fan_out: bool = False
    recipients: int = 1  # the first try's; a single send has one
    cards: str = "one number"  # a key of CARDS
    retries: int = 0
    max_retries: int = 0  # the hook's HTTP retries in place
    gateway_clock: int = 0  # the gateway's clock minus the world's, seconds
    date_header: bool = True
    small_waves: bool = False

    __repr__ = _short_repr

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis prints the example
        printer.text(repr(self))


@dataclass(frozen=True)
class TryPlan:
    """What one try meets."""

    later: int = 300  # seconds since the previous try, on the world's clock
    worker_clock: float = 0.0  # this try's worker clock minus the world's, seconds
    order: str = "first"  # a fan-out's recipients: first, reversed, rotated, shuffled (by seed)
    seed: int = 1
    drop: frozenset[int] = frozenset()  # a fan-out: the first try's recipients (by number) left out
    extra: int = 0  # a fan-out: recipients added after the first try's
    refused: frozenset[int] = frozenset()  # recipients (by number) the gateway refuses in this try
    send_faults: tuple[str, ...] = ()  # the next sendContact requests' answers (SEND_FAULTS)
    lookup_faults: tuple[str, ...] = ()  # the next lookups' answers (LOOKUP_FAULTS)
    crash_at_write: int | None = None  # the worker dies at this write to the store

    __repr__ = _short_repr

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis prints the example
        printer.text(repr(self))


def _recipient_counts() -> st.SearchStrategy[int]:
    small = st.integers(2, MAX_SMALL)
    return st.integers(0, 24).flatmap(lambda k: st.just(BIG_FAN_OUT) if k == 24 else small) if DEEP else small


@st.composite
def tasks(draw: st.DrawFn) -> Task:
    dialect = draw(st.sampled_from(["chatapi", "1msg"]))
    fan_out = draw(st.booleans())
    recipients = draw(_recipient_counts()) if fan_out else 1
    card_kinds = [kind for kind in CARDS if not (kind == "two cards, one number" and "shared_number" in OFF)]
    return Task(
        dialect=dialect,
        fan_out=fan_out,
        recipients=recipients,
        cards=draw(st.sampled_from(card_kinds)),
        retries=draw(st.integers(0, 3)),
        max_retries=draw(st.integers(0, 2)),
        gateway_clock=draw(st.sampled_from([0, 30, -30, -200, 3600, -3600])),
        date_header=True if "no_date" in OFF else not draw(st.booleans()),
        small_waves=fan_out and recipients <= MAX_SMALL and draw(st.booleans()),
    )


@st.composite
def try_plans(draw: st.DrawFn) -> TryPlan:
    send_faults = [name for name in SEND_FAULTS if not (name == "ok, error: null" and "error_null" in OFF)]
    lookup_faults = [name for name in LOOKUP_FAULTS if not (name.startswith("status") and "status_fault" in OFF)]
    numbers = st.integers(0, MAX_SMALL + MAX_EXTRA - 1)
    reorder = "reorder" not in OFF
    return TryPlan(
        later=draw(st.sampled_from([300, 5, 60, 3600])),
        worker_clock=0.0 if "worker_clock" in OFF else draw(st.integers(-300, 300)) / 10,
        order=draw(st.sampled_from(["first", "reversed", "rotated", "shuffled"])) if reorder else "first",
        seed=draw(st.integers(1, 1000)),
        drop=draw(st.frozensets(numbers, max_size=3)) if reorder else frozenset(),
        extra=draw(st.integers(0, MAX_EXTRA)) if reorder else 0,
        refused=draw(st.frozensets(numbers, max_size=2)),
        send_faults=tuple(draw(st.lists(st.sampled_from(send_faults), max_size=4))),
        lookup_faults=tuple(draw(st.lists(st.sampled_from(lookup_faults), max_size=2))),
        crash_at_write=draw(st.none() | st.integers(1, 8)),
    )


# ---- the machine ---------------------------------------------------------------------------------


class Histories(RuleBasedStateMachine):
    """Tries of one task instance, checked after each against the job's cards at the gateway."""

    def __init__(self, gateways: dict[str, StandInGateway], clock: WorldClock) -> None:
        super().__init__()
        self.gateways = gateways
        self.clock = clock
        self.task = Task()
        self.gateway = gateways["chatapi"]
        self.store = DyingStore()
        self.try_number = 0
        self.max_tries = 0
        self.retryable = False  # the last try failed in a way Airflow retries
        self.succeeded = False  # the last try succeeded
        self.job = 0
        self.job_start = 0  # the job's first card: an index into gateway.messages
        self.meant: set[str] = set()  # the chats the job's tries named
        self.pending: collections.deque[str] = collections.deque()  # sendContact's faults not yet met
        self.wave_size: int | None = None  # ledger.WAVE_SIZE before this example set it

    # -- the rules: what Airflow may do next

    @initialize(task=tasks(), plan=try_plans())
    def first_try(self, task: Task, plan: TryPlan) -> None:
        self.task = task
        self.gateway = self.gateways[task.dialect]
        self.gateway.reset()
        self.gateway.clock_offset = task.gateway_clock
        self.gateway.date_header = task.date_header
        self.clock.now = WORLD_START
        self.max_tries = task.retries
        if task.small_waves:
            self.wave_size = ledger_module.WAVE_SIZE
            ledger_module.WAVE_SIZE = SMALL_WAVES
        self._run(plan, "first try")

    @precondition(lambda self: self.retryable and 0 < self.try_number <= self.max_tries)
    @rule(plan=try_plans())
    def retry(self, plan: TryPlan) -> None:
        self._run(plan, "retry")

    @rule(plan=try_plans())
    def clear(self, plan: TryPlan) -> None:
        self.max_tries = self.try_number + self.task.retries
        if self.succeeded:  # do it again: a new job
            self.job += 1
            self.job_start = len(self.gateway.messages)
            self.meant = set()
        self._run(plan, "clear after a success" if self.succeeded else "clear after a failure")

    def teardown(self) -> None:
        if self.wave_size is not None:
            ledger_module.WAVE_SIZE = self.wave_size

    # -- the invariants, after every step

    @invariant()
    def no_chat_has_two_cards_of_the_job(self) -> None:
        for chat_id, cards in self._job_cards().items():
            assert len(cards) <= 1, f"{chat_id} has {len(cards)} cards of job {self.job}: {[c.id for c in cards]}"

    @invariant()
    def cards_go_only_to_chats_the_job_named(self) -> None:
        strays = set(self._job_cards()) - self.meant
        assert not strays, f"cards of job {self.job} to chats no try of it named: {sorted(strays)}"

    # -- a try

    def _run(self, plan: TryPlan, kind: str) -> None:
        self.try_number += 1
        self.clock.now += plan.later
        numbers = self._recipients(plan)
        chats = [chat(number) for number in numbers]
        self.meant.update(chats)
        refused = {chat(phone(index)) for index in plan.refused} & set(chats)
        self.gateway.refuse_chats = dict.fromkeys(refused, "The number is not on WhatsApp")
        self._inject(plan)
        requests_before = len(self.gateway.requests_to("sendContact"))
        cards_before = len(self.gateway.messages)
        self.store.writes, self.store.die_at = 0, plan.crash_at_write
        ti = TaskInstance(self.try_number, self.max_tries)
        operator = self._operator(numbers)
        outcome: Any
        with self.clock.worker(plan.worker_clock):
            try:
                outcome = operator.execute({"task_state_store": self.store, "ti": ti})  # type: ignore[arg-type]
            except (Killed, Exception) as error:
                outcome = error
        sent = self.gateway.messages[cards_before:]
        note(
            f"try {self.try_number} ({kind}, job {self.job}, max_tries {self.max_tries}): "
            f"{len(chats)} recipients {numbers[:8]}{'…' if len(numbers) > 8 else ''}, refused {sorted(refused)}; "
            f"{len(sent)} cards to {[message.chat_id for message in sent][:8]}; "
            f"outcome {type(outcome).__name__}: {str(outcome)[:300]}"
        )
        refusals = self._refusals(requests_before, refused)
        self.succeeded = not isinstance(outcome, BaseException)
        self.retryable = isinstance(outcome, BaseException) and not isinstance(outcome, AirflowFailException)
        if self.succeeded:
            self._check_success(chats, outcome)
        else:
            self._check_failure(chats, outcome, refusals)

    def _recipients(self, plan: TryPlan) -> list[str]:
        if not self.task.fan_out:
            return [phone(0)]
        first = range(self.task.recipients)
        numbers = [phone(index) for index in first if index not in plan.drop] or [phone(0)]
        numbers += [phone(self.task.recipients + index) for index in range(plan.extra)]
        if plan.order == "reversed":
            numbers.reverse()
        elif plan.order == "rotated":
            turn = plan.seed % len(numbers)
            numbers = numbers[turn:] + numbers[:turn]
        elif plan.order == "shuffled":
            random.Random(plan.seed).shuffle(numbers)
        return numbers

    def _inject(self, plan: TryPlan) -> None:
        self.gateway.inject(*(SEND_FAULTS[name]() for name in plan.send_faults))
        self.pending.extend(plan.send_faults)
        for name in plan.lookup_faults:
            endpoint, make = LOOKUP_FAULTS[name]
            self.gateway.inject(make(), endpoint=endpoint)

    def _operator(self, numbers: list[str]) -> SendContactOperator | SendContactToManyOperator:
        common: dict[str, Any] = {
            "chatapi_conn_id": CONNECTIONS[self.task.dialect],
            "retries": self.task.retries,
            "max_retries": self.task.max_retries,
            **CARDS[self.task.cards],
        }
        if self.task.fan_out:
            return SendContactToManyOperator(task_id="many", recipients=numbers, max_in_flight=1, **common)
        return SendContactOperator(task_id="one", phone=numbers[0], **common)

    def _refusals(self, requests_before: int, refused: set[str]) -> list[str]:
        """The chats whose sends this try the gateway refused: a ``sent: false`` fault, or a refused chat
        answered normally."""
        refusals = []
        for request in self.gateway.requests_to("sendContact")[requests_before:]:
            fault = self.pending.popleft() if self.pending else "ok"  # the stand-in meets them in order
            body = request.json if isinstance(request.json, dict) else {}
            chat_id = chat(str(body["phone"])) if "phone" in body else str(body.get("chatId"))
            if fault == "sent: false" or (fault.startswith("ok") and chat_id in refused):
                refusals.append(chat_id)
        return refusals

    # -- the checks after a try

    def _job_cards(self) -> dict[str, list[QueuedMessage]]:
        cards: dict[str, list[QueuedMessage]] = {}
        for message in self.gateway.messages[self.job_start :]:
            cards.setdefault(message.chat_id, []).append(message)
        return cards

    def _check_success(self, chats: list[str], returned: Any) -> None:
        cards = self._job_cards()
        counts = {chat_id: len(cards.get(chat_id, ())) for chat_id in chats}
        wrong = {chat_id: count for chat_id, count in counts.items() if count != 1}
        assert not wrong, (
            f"try {self.try_number} succeeded, but these recipients have not one card of job {self.job}: {wrong}"
        )
        ids = [cards[chat_id][0].id for chat_id in chats]
        assert returned == (ids if self.task.fan_out else ids[0]), "the ids returned are not the job's cards"

    def _check_failure(self, chats: list[str], error: BaseException, refusals: list[str]) -> None:
        if isinstance(error, Killed):
            return
        if isinstance(error, AirflowFailException):
            assert refusals, f"try {self.try_number} failed without retries, but the gateway refused nothing: {error}"
            error = error.__cause__ or error
        else:
            retryable = isinstance(error, (DeliveryUnknownError, FanOutError)) or (
                isinstance(error, NotSentError) and error.transient
            )
            assert retryable, f"try {self.try_number} failed with an error of no known kind: {error!r}"
        if isinstance(error, FanOutError):
            assert set(error.failures) | set(error.queued) == set(chats), "the failed fan-out lost track of some"
            cards = self._job_cards()
            for chat_id, result in error.queued.items():
                ids = [card.id for card in cards.get(chat_id, ())]
                assert ids == [result.id], f"{chat_id} reported queued as {result.id}, its cards of the job: {ids}"


# ---- the test ------------------------------------------------------------------------------------


QUIET = logging.getLogger("test.chatapi.generated_histories")
QUIET.setLevel(logging.ERROR)
QUIET.propagate = False


@pytest.fixture
def quick_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of tries in a minute: the operators and their hooks log to a silent logger, and each
    fan-out's new ``httpx`` client reuses one SSL context (which it never uses on loopback's plain HTTP)
    instead of loading the CA bundle again, which took most of a try's time."""
    for owner in (SendContactOperator, SendContactToManyOperator, ChatApiHook):
        monkeypatch.setattr(owner, "log", property(lambda self: QUIET))
    transports = httpx._transports.default
    if hasattr(transports, "create_ssl_context"):
        monkeypatch.setattr(transports, "create_ssl_context", functools.cache(transports.create_ssl_context))


def test_generated_histories_send_each_card_exactly_once(
    stand_in: Callable[..., StandInGateway],
    quick_retries: list[float],
    quick_tries: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateways = {dialect: stand_in(dialect, connection=CONNECTIONS[dialect]) for dialect in CONNECTIONS}
    clock = WorldClock()
    monkeypatch.setattr(airflow_provider_chatapi.testing, "time", clock.for_the_stand_in)
    profile = settings.get_profile("chatapi-deep" if DEEP else "chatapi-normal")
    run_state_machine_as_test(lambda: Histories(gateways, clock), settings=profile)
