"""Recognising an earlier try's card at the gateway, and the ledger kept in the task state store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_chatapi.delivery import BatchLedger, DeliveryLedger
from airflow_provider_chatapi.protocol import classic
from airflow_provider_chatapi.protocol.errors import GatewayError
from airflow_provider_chatapi.protocol.sends import build_send_contact, build_send_to_many
from airflow_provider_chatapi.protocol.wire import CLOCK_SKEW, read_response

from .conftest import DictStore

SINCE = 1_800_000_000.0
SEND = build_send_contact(["79001111111", "79002222222"], phone="17472822486")
ONE = build_send_contact("79001111111", chat_id="120363041234567890@g.us")


def card(**changes: Any) -> dict[str, Any]:
    entry = {
        "id": "true_17472822486@c.us_AAA",
        "type": "multi_vcard",
        "fromMe": True,
        "chatId": "17472822486@c.us",
        "time": int(SINCE) + 5,
        "body": "BEGIN:VCARD TEL;waid=79001111111 … BEGIN:VCARD TEL;waid=79002222222",
    }
    return {**entry, **changes}


def test_the_chat_history_query() -> None:
    request = classic.build_message_history("17472822486@c.us", since=SINCE)
    assert (request.method, request.endpoint) == ("GET", "messages")
    assert dict(request.params) == {
        "chatId": "17472822486@c.us",
        "min_time": str(int(SINCE - CLOCK_SKEW)),
        "limit": "100",
    }
    assert SEND.chat_id == "17472822486@c.us"
    assert ONE.chat_id == "120363041234567890@g.us"


def test_a_matching_card_is_found() -> None:
    assert classic.find_contact_card(SEND, [card()], since=SINCE) == "true_17472822486@c.us_AAA"
    older_but_within_skew = card(time=int(SINCE - CLOCK_SKEW) + 1)
    assert classic.find_contact_card(SEND, [older_but_within_skew], since=SINCE)


@pytest.mark.parametrize(
    "other",
    [
        card(type="vcard"),
        card(type="chat", body="79001111111 79002222222"),
        card(fromMe=False),
        card(chatId="79005555555@c.us"),
        card(time=int(SINCE - CLOCK_SKEW) - 1),
        card(body="BEGIN:VCARD TEL;waid=79001111111"),
        card(id=None),
    ],
    ids=["one contact", "text message", "incoming", "other chat", "too old", "other contacts", "no id"],
)
def test_other_messages_are_not_taken_for_the_card(other: dict[str, Any]) -> None:
    assert classic.find_contact_card(SEND, [other], since=SINCE) is None


def test_a_queue_entry_without_chat_or_time_matches_on_type_and_numbers() -> None:
    queued = {"id": "true_q", "type": "vcard", "body": "TEL;waid=79001111111", "last_try": None, "metadata": {}}
    assert classic.find_contact_card(ONE, [{"id": "x", "type": "vcard", "body": "79009999999"}, queued], since=0) == (
        "true_q"
    )


def test_history_and_queue_answers_are_read() -> None:
    history = read_response(200, {}, b'{"messages": [{"id": "a"}, 3], "lastMessageNumber": 1}', secret="t")
    assert classic.parse_message_history(history) == [{"id": "a"}]
    queue = read_response(200, {}, b'{"totalMessages": 0, "first100": []}', secret="t")
    assert classic.parse_message_queue(queue) == []
    broken = read_response(200, {}, b'{"messages": "none"}', secret="t")
    with pytest.raises(GatewayError, match="'messages' that is not a list"):
        classic.parse_message_history(broken)


def test_ledger_records_intent_then_id() -> None:
    store = DictStore()
    ledger = DeliveryLedger(store)
    assert ledger.recorded(SEND) is None

    intent = ledger.record_intent(SEND)
    seen = ledger.recorded(SEND)
    assert seen is not None and seen.message_id is None and seen.attempted_at == intent.attempted_at

    ledger.record_sent(intent, "true_id")
    seen = ledger.recorded(SEND)
    assert seen is not None and seen.message_id == "true_id"
    assert ledger.recorded(ONE) is None  # another request is another card


def test_ledger_ignores_what_it_did_not_write() -> None:
    store = DictStore()
    store.values["chatapi_send_contact"] = "garbage"
    assert DeliveryLedger(store).recorded(SEND) is None


class CountingStore(DictStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def set(self, key: str, value: Any) -> None:
        self.writes += 1
        super().set(key, json.loads(json.dumps(value)))  # what survives is JSON, as in Airflow's store


def test_batch_ledger_writes_twice_per_batch_and_resumes_per_recipient() -> None:
    sends = build_send_to_many("79009999999", [f"7900100{n:04d}" for n in range(50)])
    store = CountingStore()
    ledger = BatchLedger(store)
    ledger.begin(sends)
    assert all(ledger.recorded(send) is None for send in sends)  # fresh sends: nothing to reconcile
    for number, send in enumerate(sends[:40]):
        ledger.record_sent(ledger.record_intent(send), f"true_{number}")
    ledger.flush()
    assert store.writes == 2

    retry = BatchLedger(store)
    retry.begin(sends)
    done = [retry.recorded(send) for send in sends]
    assert [record.message_id for record in done[:40] if record] == [f"true_{n}" for n in range(40)]
    unknown = done[40:]
    assert all(record is not None and record.message_id is None for record in unknown)  # to reconcile


def test_a_first_try_does_not_read_the_store() -> None:
    store = DictStore()
    DeliveryLedger(store).record_intent(SEND)  # even were something there, a first try cannot own it
    store.get = None  # type: ignore[method-assign, assignment]
    assert DeliveryLedger(store, first_try=True).recorded(SEND) is None
    assert BatchLedger(store, first_try=True).recorded(SEND) is None
