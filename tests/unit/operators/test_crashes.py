"""A fan-out's retry after its worker died, and the same broadcast run twice: what the retry sends, what
it takes from the gateway, and how many lookups it costs (issue 15, items 2 and 3)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi._protocol.record import WAVE_SIZE
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import DictStore, DyingStore, Killed

LOOKUPS = ("messages", "showMessagesQueue")


LOG = logging.getLogger("test.chatapi.crashes")


@pytest.fixture(autouse=True)
def _operators_log_to_one_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operators' lines and their hooks', in one stdlib logger that ``caplog`` reads on every release."""
    monkeypatch.setattr(SendContactToManyOperator, "log", property(lambda self: LOG))


def fan_out(recipients: list[str], store: DictStore, *, try_number: int) -> list[str]:
    operator = SendContactToManyOperator(
        task_id="many", contact_ids=["79009999999"], recipients=recipients, max_in_flight=20
    )
    operator.hook._log = LOG  # Airflow's LoggingMixin logs through this logger once set
    ti = type("TI", (), {"try_number": try_number, "max_tries": 3, "xcom_push": lambda *a, **k: None})()
    return operator.execute({"task_state_store": store, "ti": ti})  # type: ignore[arg-type]


def cards_per_chat(gateway: StandInGateway) -> Counter[str]:
    return Counter(message.chat_id for message in gateway.messages)


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
def test_after_a_crash_mid_wave_a_retry_costs_a_few_lookups_not_two_a_recipient(
    stand_in: Callable[..., StandInGateway], dialect: str
) -> None:
    gateway = stand_in(dialect)
    recipients = [f"7901{n:07d}" for n in range(2 * WAVE_SIZE + 100)]
    store = DyingStore(die_at=5)  # listing, wave 0 before and after, wave 1 before; dies writing wave 1's outcomes
    with pytest.raises(Killed):
        fan_out(recipients, store, try_number=1)
    assert len(gateway.messages) == 2 * WAVE_SIZE  # two waves sent; only wave 0's outcomes on record
    before = len(gateway.requests)

    store.die_at = None
    ids = fan_out(recipients, store, try_number=2)
    lookups = [request for request in gateway.requests[before:] if request.endpoint in LOOKUPS]
    assert len(lookups) <= 3  # the history of every chat since wave 1's intent (+ the classic queue)
    assert cards_per_chat(gateway) == Counter({f"{number}@c.us": 1 for number in recipients})
    by_chat = {message.chat_id: message.id for message in gateway.messages}
    assert ids == [by_chat[f"{number}@c.us"] for number in recipients]  # the ids found and those sent, in order


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
def test_the_same_broadcast_twice_never_takes_the_first_runs_cards(
    stand_in: Callable[..., StandInGateway], dialect: str
) -> None:
    """Run 2's answers are lost; run 1 sent the same cards to the same chats seconds before. Its cards must
    not pass for run 2's: each recipient gets its second card."""
    gateway = stand_in(dialect)
    recipients = [f"7901{n:07d}" for n in range(20)]
    fan_out(recipients, DictStore(), try_number=1)  # run 1
    gateway.clock_offset = 10  # run 2, ten seconds later on the gateway's clock
    gateway.inject(*[Fault.server_error(500, queued=False)] * 5)  # five of run 2's sends lost, none queued
    run_2 = DictStore()
    with pytest.raises(Exception, match="MAY HAVE BEEN QUEUED"):
        fan_out(recipients, run_2, try_number=1)
    fan_out(recipients, run_2, try_number=2)
    assert cards_per_chat(gateway) == Counter({f"{number}@c.us": 2 for number in recipients})


def test_a_gateway_clock_far_from_ours_still_finds_the_lost_card(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", clock_offset=-3600)  # an hour behind: its cards look older than our intents
    recipients = [f"7901{n:07d}" for n in range(6)]
    gateway.inject(*[Fault.server_error(500)] * 3)  # three queued, their answers lost
    store = DictStore()
    with pytest.raises(Exception, match="MAY HAVE BEEN QUEUED"):
        fan_out(recipients, store, try_number=1)
    fan_out(recipients, store, try_number=2)
    assert cards_per_chat(gateway) == Counter({f"{number}@c.us": 1 for number in recipients})


@pytest.mark.parametrize("dialect", ["chatapi", "1msg"])
@pytest.mark.parametrize("offset", [-3600, -300, 3600])
def test_a_single_sends_lost_card_is_found_on_a_gateway_clock_far_from_ours(
    stand_in: Callable[..., StandInGateway], dialect: str, offset: int
) -> None:
    """A single send records its intent on the worker's clock; its retry places it on the gateway's before
    reading the history. Read from "our time less two minutes", a gateway five minutes behind had stamped the
    card before the window, and the retry sent a second card."""
    gateway = stand_in(dialect, clock_offset=offset)
    gateway.inject(Fault.server_error(500))  # queued, the answer lost
    store = DictStore()

    def send(try_number: int) -> str:
        operator = SendContactOperator(task_id="one", contact_ids=["79009999999"], phone="79001111111")
        ti = type("TI", (), {"try_number": try_number, "max_tries": 3, "xcom_push": lambda *a, **k: None})()
        return operator.execute({"task_state_store": store, "ti": ti})  # type: ignore[arg-type]

    with pytest.raises(Exception, match="MAY HAVE BEEN QUEUED"):
        send(1)
    assert send(2) == gateway.messages[0].id
    assert len(gateway.messages) == 1


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage() for record in caplog.records if record.levelno >= logging.INFO and record.name == LOG.name
    ]


def test_a_failed_or_resumed_fan_out_logs_lines_a_person_reads(
    stand_in: Callable[..., StandInGateway], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15 item 5: a failed fan-out of 1,000 logged a line for each of its 990 queued cards."""
    recipients = [f"7901{n:07d}" for n in range(WAVE_SIZE + 600)]
    stand_in(refuse_chats={f"{number}@c.us": "not on WhatsApp" for number in recipients[:10]})
    store = DyingStore()
    with (
        caplog.at_level(logging.INFO, logger=LOG.name),
        pytest.raises(AirflowFailException, match="10 of 1000 sends failed"),
    ):
        fan_out(recipients, store, try_number=1)
    lines = info_lines(caplog)
    assert "990 of 1000 cards were queued before the failure; they are on record" in "\n".join(lines)
    assert len(lines) <= 20

    caplog.clear()
    store.die_at = store.writes + 2  # the next try dies writing its first wave's outcomes
    with caplog.at_level(logging.INFO, logger=LOG.name), pytest.raises(Killed):
        fan_out(recipients, store, try_number=2)
    caplog.clear()
    store.die_at = None
    with caplog.at_level(logging.INFO, logger=LOG.name), pytest.raises(AirflowFailException):
        fan_out(recipients, store, try_number=3)
    lines = info_lines(caplog)
    assert any(line.startswith("Earlier tries' outcomes were unknown for") for line in lines)
    assert len(lines) <= 20
