"""Recognising an earlier try's card at the gateway, and the ledger kept in the task state store."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from airflow_provider_chatapi._protocol import classic
from airflow_provider_chatapi._protocol.http import read_response
from airflow_provider_chatapi._protocol.ledger import BatchLedger, DeliveryLedger
from airflow_provider_chatapi._protocol.reconcile import CLOCK_SKEW, HISTORY_LIMIT, history_request, pick_card
from airflow_provider_chatapi._protocol.sends import build_send_contact, build_send_to_many
from airflow_provider_chatapi.exceptions import GatewayError

from .conftest import DictStore


def find(send: Any, entries: list[dict[str, Any]], *, since: float, **rules: Any) -> str | None:
    return pick_card(send, entries, since=since, card_types=classic.card_types(send), **rules)


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
    request = history_request("17472822486@c.us", since=SINCE)
    assert (request.method, request.endpoint) == ("GET", "messages")
    assert dict(request.params) == {
        "chatId": "17472822486@c.us",
        "min_time": str(int(SINCE - CLOCK_SKEW)),
        "limit": str(HISTORY_LIMIT),
    }
    assert SEND.chat_id == "17472822486@c.us"
    assert ONE.chat_id == "120363041234567890@g.us"


def test_a_matching_card_is_found() -> None:
    assert find(SEND, [card()], since=SINCE) == "true_17472822486@c.us_AAA"
    older_but_within_skew = card(time=int(SINCE - CLOCK_SKEW) + 1)
    assert find(SEND, [older_but_within_skew], since=SINCE)


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
    assert find(SEND, [other], since=SINCE) is None


def test_a_queue_entry_without_chat_is_claimed_only_by_a_lone_send() -> None:
    queued = {"id": "true_q", "type": "vcard", "body": "TEL;waid=79001111111", "last_try": None, "metadata": {}}
    other = {"id": "x", "type": "vcard", "body": "79009999999"}
    assert find(ONE, [other, queued], since=0) == "true_q"  # a lone send: the entry can only be its card
    with pytest.raises(GatewayError, match="cannot tell whose card true_q is"):  # in a batch: anyone's
        find(ONE, [other, queued], since=0, shared=True)
    mine = {**queued, "id": "true_mine", "metadata": {"chatId": ONE.chat_id}}
    assert find(ONE, [queued, mine], since=0, shared=True) == "true_mine"  # one that names the chat wins


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

    ledger.record(intent.sent("true_id"))
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
        ledger.record(ledger.record_intent(send).sent(f"true_{number}"))
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


def test_a_not_sent_mark_leaves_nothing_to_reconcile() -> None:
    store = DictStore()
    ledger = DeliveryLedger(store)
    ledger.record(ledger.record_intent(SEND).nothing_queued())
    assert DeliveryLedger(store).recorded(SEND) is None


def test_a_clear_sends_again_but_still_reconciles_a_lost_answer() -> None:
    store = DictStore()
    first_run = DeliveryLedger(store, generation=0)
    first_run.record(first_run.record_intent(SEND).sent("true_id"))
    assert DeliveryLedger(store, generation=0).recorded(SEND) is not None  # a retry: not again
    assert DeliveryLedger(store, generation=1).recorded(SEND) is None  # after a clear: send anew

    lost = DictStore()
    DeliveryLedger(lost, generation=0).record_intent(SEND)  # the earlier run's answer was lost
    intent = DeliveryLedger(lost, generation=1).recorded(SEND)
    assert intent is not None and intent.message_id is None  # reconciled before any new send
    DeliveryLedger(lost, generation=1).record(intent.sent("true_found"))
    assert DeliveryLedger(lost, generation=1).recorded(SEND).message_id == "true_found"  # type: ignore[union-attr]


def test_the_same_cards_in_another_order_are_the_same_send() -> None:
    store = DictStore()
    ledger = DeliveryLedger(store)
    ledger.record(ledger.record_intent(SEND).sent("true_id"))
    reordered = build_send_contact(["79002222222", "79001111111"], phone="17472822486")
    assert DeliveryLedger(store).recorded(reordered).message_id == "true_id"  # type: ignore[union-attr]


def test_set_input_gives_the_same_request_in_every_process() -> None:
    import subprocess
    import sys

    script = (
        "from airflow_provider_chatapi._protocol.classic import CLASSIC;"
        "from airflow_provider_chatapi._protocol.sends import build_send_to_many as b;"
        "import json;"
        "sends = b({'79001111111', '79002222222', '79003333333', '447911123456'}, {'17472822486', '4915112345678'});"
        "print(json.dumps([CLASSIC.send_request(s).json for s in sends]))"
    )
    bodies = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(bodies) == 1


def test_a_batch_knows_the_ids_other_recipients_own() -> None:
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222"])
    ledger = BatchLedger(DictStore())
    ledger.begin(sends)
    assert ledger.shared
    ledger.record(ledger.record_intent(sends[0]).sent("true_first"))
    assert ledger.claimed(sends[1]) == {"true_first"} and ledger.claimed(sends[0]) == set()
