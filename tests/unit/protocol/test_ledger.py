"""The ledger kept in the task state store: an intent before each send and the id after it, per recipient,
in waves for a batch; what a retry or a clear may trust of it; and how small it stays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.clock import Intent
from airflow_provider_chatapi._protocol.ledger import WAVE_SIZE, BatchLedger, DeliveryLedger, DeliveryRecord
from airflow_provider_chatapi._protocol.reconcile import Verdicts
from airflow_provider_chatapi._protocol.sends import build_send_contact, build_send_to_many
from airflow_provider_chatapi.exceptions import DeliveryUnknownError
from tests.helpers import DictStore

SEND = build_send_contact(["79001111111", "79002222222"], phone="17472822486")
ONE = build_send_contact("79001111111", chat_id="120363041234567890@g.us")


class JsonStore(DictStore):
    """The store as Airflow keeps it: values survive as JSON; it counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def set(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().set(key, json.loads(json.dumps(value)))

    def size(self, key: str) -> int:
        return len(json.dumps(self.values[key]).encode())


def run_waves(ledger: BatchLedger, sends: list[Any], outcome: Any) -> None:
    """What the batch runner does with a ledger: each wave between its checkpoints; ``outcome(index)`` is a
    message id, None for "not sent", or ... for "the worker died here"."""
    for start in range(0, len(sends), ledger.wave_size):
        stop = min(start + ledger.wave_size, len(sends))
        ledger.before_wave(start, stop)
        for index in range(start, stop):
            result = outcome(index)
            if result is ...:
                return  # killed: no outcome written for this wave
            assert ledger.recorded(sends[index]) is None
            record = ledger.record_intent(sends[index])
            ledger.record(record.sent(result) if result else record.nothing_queued())
        ledger.after_wave(start, stop)


def test_ledger_records_intent_then_id() -> None:
    store = JsonStore()
    ledger = DeliveryLedger(store)
    assert ledger.recorded(SEND) is None

    intent = ledger.record_intent(SEND)
    seen = DeliveryLedger(store).recorded(SEND)
    assert seen is not None and seen.lost and seen.intent == intent.intent

    ledger.record(intent.sent("true_id"))
    seen = DeliveryLedger(store).recorded(SEND)
    assert seen is not None and seen.message_id == "true_id"
    assert DeliveryLedger(store).recorded(ONE) is None  # another request is another card


@pytest.mark.parametrize("value", ["garbage", {"g": 0, "r": {"17472822486@c.us": "short"}}, {"g": "x", "r": {}}])
def test_ledger_ignores_what_it_did_not_write(value: Any) -> None:
    store = DictStore()
    store.values["chatapi_send_contact"] = value
    assert DeliveryLedger(store).recorded(SEND) is None


@pytest.mark.parametrize(
    "record",
    [
        DeliveryRecord("79001111111@c.us", "AbCd-_12", intent=Intent(1_800_000_000, tied=True)),
        DeliveryRecord("79001111111@c.us", "AbCd-_12", intent=Intent(1_800_000_000, tied=False)),
        DeliveryRecord("79001111111@c.us", "AbCd-_12", message_id="true_79001111111@c.us_3EB0C5"),
        DeliveryRecord("79001111111@c.us", "AbCd-_12", message_id="wamid.HBgL*odd"),
        DeliveryRecord("79001111111@c.us", "AbCd-_12", not_sent=True),
    ],
    ids=["tied intent", "untied intent", "classic id", "other id", "not sent"],
)
def test_an_entry_reads_back_as_written(record: DeliveryRecord) -> None:
    assert DeliveryRecord.decoded(record.chat_id, record.encoded()) == record
    assert record.chat_id not in record.encoded()  # the chat is the entry's key: not written twice


def test_a_batch_writes_each_wave_before_and_after_it_and_resumes_per_recipient() -> None:
    sends = build_send_to_many("79009999999", [f"7900100{n:04d}" for n in range(2 * WAVE_SIZE + 10)])
    store = JsonStore()
    first = BatchLedger(store, first_try=True)
    assert first.prepare(sends) == []
    killed_at = WAVE_SIZE + 50
    run_waves(first, sends, lambda index: ... if index == killed_at else f"true_{index}")
    key = "chatapi_send_contact:batch"
    assert store.writes == [key, f"{key}:0", f"{key}:0", f"{key}:1"]  # listing, wave 0 twice, wave 1's intents

    retry = BatchLedger(store)
    lost = retry.prepare(sends)
    assert [item.send for item in lost] == sends[WAVE_SIZE : 2 * WAVE_SIZE]  # only the wave in flight
    assert retry.recorded(sends[0]).message_id == "true_0"  # type: ignore[union-attr]
    assert retry.recorded(sends[-1]) is None  # never reached: simply sent


def test_a_batch_record_stays_small() -> None:
    """Issue 15: at 10,000 recipients, at most 100 bytes a recipient, each key under Airflow's 64 KB warning."""
    recipients = [f"7901{n:07d}" for n in range(10_000)]
    sends = build_send_to_many("79009999999", recipients)
    store = JsonStore()
    ledger = BatchLedger(store, first_try=True)
    ledger.prepare(sends)
    run_waves(ledger, sends, lambda index: f"true_{sends[index].chat_id}_3EB031DE2C36C5598621{index:04X}")
    ledger.complete()
    sizes = {key: store.size(key) for key in store.values}
    assert sum(sizes.values()) / len(sends) <= 100
    assert max(sizes.values()) < 64 * 1024

    onemsg = JsonStore()  # 1msg's ids are longer and carry no chat
    ledger = BatchLedger(onemsg, first_try=True)
    ledger.prepare(sends)
    run_waves(ledger, sends, lambda index: f"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4{index:06d}")
    assert max(onemsg.size(key) for key in onemsg.values) < 64 * 1024


def test_a_first_try_does_not_read_the_store() -> None:
    store = DictStore()
    DeliveryLedger(store).record_intent(SEND)  # even were something there, a first try cannot own it
    store.get = None  # type: ignore[method-assign, assignment]
    assert DeliveryLedger(store, first_try=True).recorded(SEND) is None
    assert BatchLedger(store, first_try=True).prepare([SEND]) == []


def test_a_not_sent_mark_leaves_nothing_to_reconcile() -> None:
    store = DictStore()
    ledger = DeliveryLedger(store)
    ledger.record(ledger.record_intent(SEND).nothing_queued())
    assert DeliveryLedger(store).recorded(SEND) is None


def test_a_clear_after_a_success_sends_again_but_still_reconciles_a_lost_answer() -> None:
    store = JsonStore()
    first_run = DeliveryLedger(store, generation=0)
    first_run.record(first_run.record_intent(SEND).sent("true_id"))
    assert DeliveryLedger(store, generation=0).recorded(SEND) is not None  # a retry: not again
    first_run.complete()
    assert DeliveryLedger(store, generation=1).recorded(SEND) is None  # a clear after a success: send anew

    lost = JsonStore()
    DeliveryLedger(lost, generation=0).record_intent(SEND)  # the earlier run's answer was lost
    DeliveryLedger(lost, generation=0).complete()
    intent = DeliveryLedger(lost, generation=1).recorded(SEND)
    assert intent is not None and intent.lost  # reconciled before any new send


def test_a_clear_after_a_failure_finishes_the_job() -> None:
    store = JsonStore()
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222"])
    failed = BatchLedger(store, generation=0)
    failed.prepare(sends)
    run_waves(failed, sends, lambda index: "true_served" if index == 0 else None)  # no complete(): it failed
    cleared = BatchLedger(store, generation=3)
    assert cleared.prepare(sends) == []
    assert cleared.recorded(sends[0]).message_id == "true_served"  # type: ignore[union-attr]
    assert cleared.recorded(sends[1]) is None
    cleared.before_wave(0, 2)
    cleared.record(cleared.record_intent(sends[1]).sent("true_second"))
    cleared.after_wave(0, 2)
    cleared.complete()
    again = BatchLedger(store, generation=5)  # cleared once more, after that success: everyone again
    again.prepare(sends)
    assert [again.recorded(send) for send in sends] == [None, None]


def test_the_same_cards_in_another_order_are_the_same_send() -> None:
    store = DictStore()
    ledger = DeliveryLedger(store)
    ledger.record(ledger.record_intent(SEND).sent("true_id"))
    reordered = build_send_contact(["79002222222", "79001111111"], phone="17472822486")
    assert DeliveryLedger(store).recorded(reordered).message_id == "true_id"  # type: ignore[union-attr]


def test_verdicts_settle_lost_sends() -> None:
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222", "79003333333"])
    store = JsonStore()
    first = BatchLedger(store, first_try=True)
    first.prepare(sends)
    run_waves(first, sends, lambda index: ...)  # killed before any outcome
    retry = BatchLedger(store)
    assert len(retry.prepare(sends)) == 3
    retry.settle(
        Verdicts(
            found={sends[0].chat_id: "true_found"},
            absent={sends[1].chat_id},
            unknown={sends[2].chat_id: "two candidates"},
            offset=12.5,
        )
    )
    assert retry.recorded(sends[0]).message_id == "true_found"  # type: ignore[union-attr]
    assert retry.owners == {"true_found": sends[0].chat_id}
    assert retry.recorded(sends[1]) is None  # absent: sent again, under a new intent
    with pytest.raises(DeliveryUnknownError, match="cannot tell whether its card arrived: two candidates"):
        retry.recorded(sends[2])
    retry.before_wave(0, 3)
    assert retry.record_intent(sends[1]).intent.tied  # type: ignore[union-attr]  # on the gateway's clock now


def test_the_later_write_of_a_chat_wins_when_the_recipients_moved() -> None:
    store = JsonStore()
    sends = build_send_to_many("79009999999", [f"7900100{n:04d}" for n in range(WAVE_SIZE + 1)])
    first = BatchLedger(store, first_try=True)
    first.prepare(sends)
    run_waves(first, sends, lambda index: f"true_{index}")
    moved = [sends[-1], *sends[:-1]]  # the last recipient comes first now: its record moves to wave 0
    retry = BatchLedger(store)
    retry.prepare(moved)
    retry.record(retry.recorded(moved[0]).sent("true_again"))  # type: ignore[union-attr]
    retry.after_wave(0, WAVE_SIZE)
    assert BatchLedger(store).recorded(moved[0]).message_id == "true_again"  # type: ignore[union-attr]
