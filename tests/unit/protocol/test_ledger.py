"""The ledger kept in the task state store: intent before each send, the id after it, per recipient in a
batch, and what a retry or a clear may trust of it."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_chatapi._protocol.ledger import BatchLedger, DeliveryLedger
from airflow_provider_chatapi._protocol.sends import build_send_contact, build_send_to_many
from tests.helpers import DictStore

SEND = build_send_contact(["79001111111", "79002222222"], phone="17472822486")
ONE = build_send_contact("79001111111", chat_id="120363041234567890@g.us")


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


def test_a_clear_after_a_success_sends_again_but_still_reconciles_a_lost_answer() -> None:
    store = DictStore()
    first_run = DeliveryLedger(store, generation=0)
    first_run.record(first_run.record_intent(SEND).sent("true_id"))
    assert DeliveryLedger(store, generation=0).recorded(SEND) is not None  # a retry: not again
    first_run.complete()
    assert DeliveryLedger(store, generation=1).recorded(SEND) is None  # a clear after a success: send anew

    lost = DictStore()
    DeliveryLedger(lost, generation=0).record_intent(SEND)  # the earlier run's answer was lost
    intent = DeliveryLedger(lost, generation=1).recorded(SEND)
    assert intent is not None and intent.message_id is None  # reconciled before any new send
    DeliveryLedger(lost, generation=1).record(intent.sent("true_found"))
    assert DeliveryLedger(lost, generation=1).recorded(SEND).message_id == "true_found"  # type: ignore[union-attr]


def test_a_clear_after_a_failure_finishes_the_job() -> None:
    store = DictStore()
    failed = BatchLedger(store, generation=0)
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222"])
    failed.begin(sends)
    failed.record(failed.record_intent(sends[0]).sent("true_served"))  # the other send failed: no complete()
    failed.flush()
    cleared = BatchLedger(store, generation=3)
    assert cleared.recorded(sends[0]).message_id == "true_served"  # type: ignore[union-attr]
    assert cleared.recorded(sends[1]) is not None and cleared.recorded(sends[1]).message_id is None  # type: ignore[union-attr]
    cleared.record(cleared.record_intent(sends[1]).sent("true_second"))
    cleared.flush()
    cleared.complete()
    again = BatchLedger(store, generation=5)  # cleared once more, after that success: everyone again
    assert [again.recorded(send) for send in sends] == [None, None]


def test_the_same_cards_in_another_order_are_the_same_send() -> None:
    store = DictStore()
    ledger = DeliveryLedger(store)
    ledger.record(ledger.record_intent(SEND).sent("true_id"))
    reordered = build_send_contact(["79002222222", "79001111111"], phone="17472822486")
    assert DeliveryLedger(store).recorded(reordered).message_id == "true_id"  # type: ignore[union-attr]


def test_a_batch_knows_the_ids_other_recipients_own() -> None:
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222"])
    ledger = BatchLedger(DictStore())
    ledger.begin(sends)
    assert ledger.shared
    ledger.record(ledger.record_intent(sends[0]).sent("true_first"))
    assert ledger.claimed(sends[1]) == {"true_first"} and ledger.claimed(sends[0]) == set()


def test_the_ids_other_recipients_own_follow_each_new_record() -> None:
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222", "79003333333"])
    store = DictStore()
    first = BatchLedger(store)
    first.begin(sends)
    first.record(first.record_intent(sends[0]).sent("true_a"))
    first.flush()
    retry = BatchLedger(store)  # read back from the store
    assert retry.claimed(sends[1]) == {"true_a"} and "true_a" not in retry.claimed(sends[0])
    retry.record(retry.record_intent(sends[0]).sent("true_b"))  # the same chat, found again under another id
    retry.record(retry.record_intent(sends[2]).sent("true_c"))
    assert retry.claimed(sends[1]) == {"true_b", "true_c"} and retry.claimed(sends[2]) == {"true_b"}
