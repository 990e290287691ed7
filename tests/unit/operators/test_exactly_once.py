"""Issue 20: exactly once whatever the recipients' order, the workers' clocks or the gateway's answer.

Each test drives the operators (``execute`` with a task state store, as Airflow 3.3 gives one; or without,
as before 3.3) against the stand-in gateway, and counts the cards it queued.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi._protocol import http, record
from airflow_provider_chatapi._protocol.http import parse_retry_after
from airflow_provider_chatapi.exceptions import DeliveryUnknownError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import DictStore, DyingStore, Killed, TaskInstance

RETRIES = 3


@dataclass
class DagRun:
    start_date: datetime | None


def context(store: DictStore | None, try_number: int, *, cleared: bool = False, started: datetime | None = None) -> Any:
    """A try's context; ``cleared``: the task instance was cleared after the previous try (which sets its
    ``max_tries`` to that try's number and the retries)."""
    ti = TaskInstance(try_number, max_tries=try_number - 1 + RETRIES if cleared else RETRIES)
    values: dict[str, Any] = {"ti": ti, "dag_run": DagRun(started)}
    if store is not None:
        values["task_state_store"] = store
    return values


def cards(gateway: StandInGateway) -> Counter[str]:
    return Counter(message.chat_id for message in gateway.messages)


def fan_out(recipients: list[str], **kwargs: Any) -> SendContactToManyOperator:
    return SendContactToManyOperator(
        task_id="many", contact_ids=["79009999999"], recipients=recipients, max_in_flight=20, retries=RETRIES, **kwargs
    )


def single(**kwargs: Any) -> SendContactOperator:
    arguments = {"contact_ids": ["79009999999"], "phone": "79001111111", "retries": RETRIES, **kwargs}
    return SendContactOperator(task_id="one", **arguments)


@pytest.fixture
def worker_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``worker_clock(seconds)``: the worker's clock (as the provider reads it) runs that far ahead of the
    machine's, on which the stand-in gateway keeps its own."""
    real = time.time

    def skew(seconds: float) -> None:
        skewed = type("SkewedTime", (), {"time": staticmethod(lambda: real() + seconds)})
        for reads_the_clock in (record, http):  # intents, and the gateway's clock against ours
            monkeypatch.setattr(reads_the_clock, "time", skewed)

    return skew


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
def test_a_retry_with_the_recipients_in_another_order_sends_no_second_card(
    stand_in: Callable[..., StandInGateway], dialect: str
) -> None:
    """801 recipients; try 1 fails on one refused chat; after a clear, try 2 gets them rotated and fails on
    it again; after another clear, try 3 gets the first order. The record kept by position sent 400 again."""
    recipients = [f"7901{n:07d}" for n in range(801)]
    gateway = stand_in(dialect, refuse_chats={f"{recipients[0]}@c.us": "The number is not on WhatsApp"})
    store = DictStore()
    rotated = recipients[400:] + recipients[:400]
    for try_number, order in enumerate([recipients, rotated, recipients], start=1):
        with pytest.raises(AirflowFailException, match="1 of 801 sends failed"):
            fan_out(order).execute(context(store, try_number, cleared=try_number > 1))
    assert cards(gateway) == Counter({f"{number}@c.us": 1 for number in recipients[1:]})


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
@pytest.mark.parametrize(("first", "retry"), [(1.5, 0.0), (2.0, 0.0), (0.0, 2.0), (30.0, -30.0), (-30.0, 30.0)])
def test_a_single_sends_retry_on_a_worker_with_another_clock_sends_no_second_card(
    stand_in: Callable[..., StandInGateway],
    worker_clock: Callable[[float], None],
    dialect: str,
    first: float,
    retry: float,
) -> None:
    """Issue 20, item 2: the intent was stamped on the first worker's clock and read on the retry's."""
    gateway = stand_in(dialect)
    store = DictStore()
    gateway.inject(Fault.server_error(500))  # queued, the answer lost
    worker_clock(first)
    with pytest.raises(DeliveryUnknownError):
        single().execute(context(store, 1))
    worker_clock(retry)
    assert single().execute(context(store, 2)) == gateway.messages[0].id
    assert len(gateway.messages) == 1


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
@pytest.mark.parametrize("behind", [130, 3600])
def test_without_a_date_header_a_gateway_clock_far_behind_gets_no_second_card(
    stand_in: Callable[..., StandInGateway], dialect: str, behind: int
) -> None:
    """Issue 20, item 3: the retry read the history from 120 s before the intent on our clock, and missed
    the card of a gateway more than that behind. With no Date, any such card means "cannot tell"."""
    gateway = stand_in(dialect, date_header=False, clock_offset=-behind)
    store = DictStore()
    gateway.inject(Fault.server_error(500))
    with pytest.raises(DeliveryUnknownError):
        single().execute(context(store, 1))
    with pytest.raises(DeliveryUnknownError, match="no Date header"):
        single().execute(context(store, 2))
    assert len(gateway.messages) == 1


def test_classic_cards_that_share_a_number_are_found_as_the_one_card_sent(
    stand_in: Callable[..., StandInGateway],
) -> None:
    """Issue 20, item 4: "Sales" and "Support" on one switchboard go out as one vCard; the retry looked for
    a message of two cards and sent again."""
    gateway = stand_in()
    store = DictStore()
    switchboard = [{"name": "Sales", "phone": "+7 900 111-22-33"}, {"name": "Support", "phone": "+7 900 111-22-33"}]
    gateway.inject(Fault.server_error(500))
    with pytest.raises(DeliveryUnknownError):
        single(contact_ids=None, contacts=switchboard).execute(context(store, 1))
    assert single(contact_ids=None, contacts=switchboard).execute(context(store, 2)) == gateway.messages[0].id
    assert len(gateway.messages) == 1


@pytest.mark.parametrize("error", [None, ""])
def test_an_empty_error_beside_a_sent_card_is_a_success(stand_in: Callable[..., StandInGateway], error: Any) -> None:
    """Issue 20, item 5: ``{"sent": true, "id": …, "error": null}`` failed the task as a refusal."""
    gateway = stand_in()
    body = {"sent": True, "message": "Sent to 79001111111@c.us", "id": "true_79001111111@c.us_ABC", "error": error}
    gateway.inject(Fault(status=200, body=body, headers={"Content-Type": "application/json"}, queue=True))
    store = DictStore()
    assert single().execute(context(store, 1)) == "true_79001111111@c.us_ABC"
    gateway.inject(Fault.unavailable())  # were the record "not sent", a retry would send now
    assert single().execute(context(store, 2)) == "true_79001111111@c.us_ABC"
    assert len(gateway.messages) == 1


@pytest.mark.parametrize("value", ["²", "١٢", "3.5", "-1", "soon"])
def test_a_retry_after_that_is_not_ascii_digits_or_a_date_is_ignored(value: str) -> None:
    assert parse_retry_after(value) is None


def test_a_rate_limit_with_an_odd_retry_after_is_retried_with_backoff(
    stand_in: Callable[..., StandInGateway], quick_retries: list[float]
) -> None:
    gateway = stand_in()
    gateway.inject(Fault.rate_limited(retry_after="²"))
    assert single().execute(context(DictStore(), 1)) == gateway.messages[0].id
    assert quick_retries == [0.5]  # the backoff, not a crash in float("²")


def test_max_in_flight_above_httpx_pool_default_is_reached(stand_in: Callable[..., StandInGateway]) -> None:
    """Issue 20, item 6: httpx's pool of 100 connections silently capped max_in_flight=150."""
    gateway = stand_in(delay=2.0)  # long enough for all 150 to be in flight on a busy machine
    recipients = [f"7901{n:07d}" for n in range(150)]

    async def send() -> None:
        hook = ChatApiHook()
        try:
            await hook.asend_to_many(["79009999999"], recipients, max_in_flight=150)
        finally:
            await hook.aclose()

    asyncio.run(send())
    assert gateway.peak_in_flight > 100


# ---- before Airflow 3.3: no store ------------------------------------------------------------------


def test_before_3_3_a_retry_after_a_hard_kill_sends_only_to_those_without_a_card(
    stand_in: Callable[..., StandInGateway],
) -> None:
    """Issue 20, item 8: on 2.11 a SIGKILLed fan-out's retry re-sent the whole batch. The first try is
    killed where no ``except`` runs: what it queued is only at the gateway."""
    gateway = stand_in()
    started = datetime.now(UTC) - timedelta(seconds=5)
    recipients = [f"7901{n:07d}" for n in range(60)]
    asyncio.run(ChatApiHook().asend_to_many(["79009999999"], recipients[:37]))  # try 1, killed after 37 cards
    ids = fan_out(recipients).execute(context(None, 2, started=started))
    assert cards(gateway) == Counter({f"{number}@c.us": 1 for number in recipients})
    by_chat = {message.chat_id: message.id for message in gateway.messages}
    assert ids == [by_chat[f"{number}@c.us"] for number in recipients]


def test_before_3_3_a_single_sends_retry_returns_the_card_the_killed_try_queued(
    stand_in: Callable[..., StandInGateway],
) -> None:
    gateway = stand_in("1msg")
    started = datetime.now(UTC) - timedelta(seconds=5)
    ChatApiHook().send_contact(["79009999999"], phone="79001111111")  # try 1, killed before it could say so
    assert single().execute(context(None, 2, started=started)) == gateway.messages[0].id
    assert len(gateway.messages) == 1


def test_before_3_3_a_card_of_an_earlier_run_is_not_taken_for_this_ones(
    stand_in: Callable[..., StandInGateway],
) -> None:
    gateway = stand_in()
    ChatApiHook().send_contact(["79009999999"], phone="79001111111")  # yesterday's run, say
    started = datetime.now(UTC) + timedelta(seconds=2)
    gateway.clock_offset = 4  # this run starts later, on the same clocks
    single().execute(context(None, 2, started=started))
    assert len(gateway.messages) == 2


def test_before_3_3_a_retry_that_cannot_tell_fails_without_sending(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in(date_header=False)
    started = datetime.now(UTC) - timedelta(seconds=5)
    ChatApiHook().send_contact(["79009999999"], phone="79001111111")
    with pytest.raises(AirflowFailException, match="no Date header"):
        single().execute(context(None, 2, started=started))
    with pytest.raises(AirflowFailException, match="cannot tell what earlier tries"):
        single().execute(context(None, 2, started=None))
    assert len(gateway.messages) == 1


def test_before_3_3_a_first_try_of_a_generation_sends_without_asking(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    single().execute(context(None, 1))
    single().execute(context(None, 2, cleared=True))  # the first try after a clear: the user asked for it again
    assert len(gateway.messages) == 2
    assert [request.endpoint for request in gateway.requests] == ["sendContact", "sendContact"]


def test_a_single_send_makes_one_request_and_two_store_writes(stand_in: Callable[..., StandInGateway]) -> None:
    """The happy path of a single send on 3.3: the POST alone (its intent is placed on the gateway's clock
    only if the answer is lost), the intent written before it and the id (with the done mark) after it."""
    gateway = stand_in()
    store = CountingStore()
    single().execute(context(store, 1))
    assert [request.endpoint for request in gateway.requests] == ["sendContact"]
    assert (store.reads, store.writes) == (0, 2)


class CountingStore(DictStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.writes += 1
        super().set(key, value)


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
def test_a_single_send_killed_after_its_post_is_never_sent_twice_whatever_the_clocks(
    stand_in: Callable[..., StandInGateway], worker_clock: Callable[[float], None], dialect: str
) -> None:
    """Killed before its answer was written, a lone send's intent stays on its worker's clock: a retry on
    another worker cannot place it to the second, so a card near it is "cannot tell", never a second card."""
    gateway = stand_in(dialect)
    store = DyingStore(die_at=2)  # the write of the id, after the POST
    worker_clock(20.0)
    with pytest.raises(Killed):
        single().execute(context(store, 1))
    worker_clock(-20.0)
    with pytest.raises(DeliveryUnknownError, match="worker's clock"):
        single().execute(context(store, 2))
    assert len(gateway.messages) == 1


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
@pytest.mark.parametrize("fan_out_too", [False, True], ids=["single", "fan-out"])
def test_a_lost_clock_probe_and_a_gateway_far_behind_send_no_second_card(
    stand_in: Callable[..., StandInGateway], dialect: str, fan_out_too: bool
) -> None:
    """Found by the generated histories: the status probe went unanswered, so the intent stayed on the
    worker's clock, and the retry read the history from 120 s before it on our clock, after the card of a
    gateway 200 s behind: "absent", and a second card."""
    gateway = stand_in(dialect, clock_offset=-200)
    store = DictStore()
    gateway.inject(Fault.reset_before_queueing(), endpoint="status")
    gateway.inject(Fault.server_error(500))  # the first card queued, its answer lost
    # no HTTP retries: the probe's lost answer is not made good in place
    operator = fan_out(["79001111111", "79002222222"], max_retries=0) if fan_out_too else single(max_retries=0)
    with pytest.raises(Exception, match="MAY HAVE BEEN QUEUED"):
        operator.execute(context(store, 1))
    try:
        operator.execute(context(store, 2))
    except Exception as error:  # "cannot tell" is allowed; a second card is not
        assert "cannot tell" in str(error)
    assert max(cards(gateway).values()) == 1


def test_a_retrys_summary_counts_what_it_sent_apart_from_what_an_earlier_try_had(
    stand_in: Callable[..., StandInGateway], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 22: the retry of a fan-out that had served 9 of 10 recipients said "10/10 done" at the rate of all
    ten; it sent one card."""
    recipients = [f"7901{n:07d}" for n in range(10)]
    gateway = stand_in(refuse_chats={f"{recipients[0]}@c.us": "The number is not on WhatsApp"})
    store = DictStore()
    with pytest.raises(AirflowFailException, match="1 of 10 sends failed"):
        fan_out(recipients).execute(context(store, 1))
    gateway.refuse_chats.clear()
    retry = fan_out(recipients)
    retry.hook._log = logging.getLogger("test.fan_out")  # Airflow's task loggers do not reach caplog
    with caplog.at_level(logging.INFO, logger="test.fan_out"):
        retry.execute(context(store, 2))
    retrys = [record.getMessage() for record in caplog.records if record.name == "test.fan_out"]
    (summary,) = [line for line in retrys if "Chat API fan-out:" in line]
    assert re.fullmatch(
        r"Chat API fan-out: 10 in [0-9.]+ s: 1 sent \([0-9]+/s\), 9 already sent by an earlier try", summary
    ), summary
    assert cards(gateway) == Counter({f"{number}@c.us": 1 for number in recipients})
