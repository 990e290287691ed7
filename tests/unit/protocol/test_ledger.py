"""The ledger kept in the task state store: an intent before each send and the id after it, per recipient,
in waves; keys of each try's own, read back by chat whatever the order; what a retry or a clear may trust of
it; and how small it stays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.reconcile import Intent, Verdicts
from airflow_provider_chatapi._protocol.record import WAVE_SIZE, DeliveryRecord, Ledger
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


def run_try(ledger: Ledger, sends: list[Any], outcome: Any) -> None:
    """What the batch runner does with a ledger: each wave between its checkpoints; ``outcome(send)`` is a
    message id, None for "not sent", or ... for "the worker died here"."""
    ledger.prepare(sends)
    for start, stop in ledger.waves():
        ledger.before_wave(start, stop)
        for send in sends[start:stop]:
            result = outcome(send)
            if result is ...:
                return  # killed: no outcome written for this wave
            record = ledger.recorded(send)  # an earlier try's id, or this try's intent
            assert record is not None
            if record.message_id is None:
                ledger.record(record.sent(result) if result else record.nothing_queued())
        ledger.after_wave(start, stop)


def served(store: DictStore, sends: list[Any], *, try_number: int, generation: int = 0) -> dict[str, str]:
    """The ids a try numbered ``try_number`` finds on record for ``sends``."""
    ledger = Ledger(store, try_number=try_number, generation=generation)
    ledger.prepare(sends)
    return {
        send.chat_id: record.message_id for send in sends if (record := ledger.recorded(send)) and record.message_id
    }


def test_a_single_send_writes_its_intent_then_its_id_and_nothing_else() -> None:
    store = JsonStore()
    ledger = Ledger(store, try_number=1)
    assert ledger.prepare([SEND]) == []
    (wave,) = ledger.waves()
    ledger.before_wave(*wave)
    seen = Ledger(store, try_number=2)
    assert [item.send for item in seen.prepare([SEND])] == [SEND]  # the intent is on record: lost, so far
    ledger.record(ledger.recorded(SEND).sent("true_id"))  # type: ignore[union-attr]
    ledger.after_wave(*wave)
    assert store.writes == ["chatapi_send_contact:1:0"] * 2  # the intent, then the id (and "done") over it
    assert served(store, [SEND], try_number=2) == {SEND.chat_id: "true_id"}
    assert served(store, [ONE], try_number=2) == {}  # another request is another card


@pytest.mark.parametrize("value", ["garbage", {"g": 0, "r": {"17472822486@c.us": "short"}}, {"g": "x", "r": {}}])
def test_ledger_ignores_what_it_did_not_write(value: Any) -> None:
    store = DictStore()
    store.values["chatapi_send_contact:1:0"] = value
    assert served(store, [SEND], try_number=2) == {}


@pytest.mark.parametrize(
    "record",
    [
        DeliveryRecord("79001111111@c.us", "AbCd-_12", intent=Intent(1_800_000_000, tied=True)),
        DeliveryRecord("79001111111@c.us", "AbCd-_12", intent=Intent.on_worker_clock(1_800_000_000)),
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
    killed_at = sends[WAVE_SIZE + 50]
    run_try(Ledger(store, try_number=1), sends, lambda send: ... if send is killed_at else f"true_{send.chat_id}")
    key = "chatapi_send_contact:1"
    assert store.writes == [f"{key}:0", f"{key}:0", f"{key}:1"]  # wave 0 twice, wave 1's intents

    retry = Ledger(store, try_number=2)
    lost = retry.prepare(sends)
    assert [item.send for item in lost] == sends[WAVE_SIZE : 2 * WAVE_SIZE]  # only the wave in flight
    assert retry.recorded(sends[0]).message_id == f"true_{sends[0].chat_id}"  # type: ignore[union-attr]
    assert retry.recorded(sends[-1]) is None  # never reached: simply sent


def test_a_chat_served_by_any_earlier_try_is_found_whatever_the_order_or_the_subset() -> None:
    """Issue 20, item 1: the record was kept by position (wave n held places 400n to 400n+399 of the try's
    list), so a retry with the recipients in another order overwrote what an earlier try had recorded."""
    sends = build_send_to_many("79009999999", [f"7900100{n:04d}" for n in range(2 * WAVE_SIZE + 1)])
    store = JsonStore()
    refused = sends[0].chat_id
    run_try(
        Ledger(store, try_number=1), sends, lambda send: None if send.chat_id == refused else f"true_{send.chat_id}"
    )
    rotated = sends[WAVE_SIZE:] + sends[:WAVE_SIZE]
    run_try(Ledger(store, try_number=2), rotated, lambda send: f"again_{send.chat_id}")
    subset = sends[::3]
    for order in (sends, rotated, subset, list(reversed(sends))):
        found = served(store, order, try_number=3)
        assert found == {
            send.chat_id: f"{'again' if send.chat_id == refused else 'true'}_{send.chat_id}" for send in order
        }


def test_a_try_that_knows_no_number_takes_the_next_free_one() -> None:
    store = JsonStore()
    run_try(Ledger(store), [SEND], lambda send: "true_first")
    assert store.writes[-1] == "chatapi_send_contact:1:0"
    assert served(store, [SEND], try_number=2) == {SEND.chat_id: "true_first"}
    run_try(Ledger(store), [ONE], lambda send: "true_second")
    assert store.writes[-1] == "chatapi_send_contact:2:0"


@pytest.mark.parametrize(
    ("chat", "message_id"),
    [
        ("{phone}@c.us", "true_{chat}_3EB031DE2C36C5598621{n:04X}"),  # classic: the id repeats the chat
        ("{phone}@c.us", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4{n:06d}"),  # 1msg's longer ids
        ("{n:0120d}@lid", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4{n:06d}"),  # 120-character chats
    ],
    ids=["classic", "1msg", "long chat ids"],
)
def test_a_batch_record_stays_small(chat: str, message_id: str) -> None:
    """Issue 15: at 10,000 recipients, at most 100 bytes a recipient, and each key under Airflow's 64 KB
    warning whatever the chat ids' length (issue 20: a wave of 120-character chats wrote 82.8 KB)."""
    phones = [f"7901{n:07d}" for n in range(10_000)]
    recipients = [chat.format(phone=phone, n=n) for n, phone in enumerate(phones)]
    sends = build_send_to_many("79009999999", recipients)
    ids = {send.chat_id: message_id.format(chat=send.chat_id, n=n) for n, send in enumerate(sends)}
    store = JsonStore()
    run_try(Ledger(store, try_number=1), sends, lambda send: ids[send.chat_id])
    sizes = {key: store.size(key) for key in store.values}
    assert max(sizes.values()) < 64 * 1024
    if not chat.endswith("@lid"):
        assert sum(sizes.values()) / len(sends) <= 100
    assert served(store, sends, try_number=2) == ids


def test_a_first_try_does_not_read_the_store() -> None:
    store = DictStore()
    run_try(Ledger(store, try_number=1), [SEND], lambda send: "true_id")
    store.get = None  # type: ignore[method-assign, assignment]
    assert Ledger(store, try_number=1).prepare([SEND]) == []


def test_a_not_sent_mark_leaves_nothing_to_reconcile() -> None:
    store = DictStore()
    run_try(Ledger(store, try_number=1), [SEND], lambda send: None)
    ledger = Ledger(store, try_number=2)
    assert ledger.prepare([SEND]) == []
    assert ledger.recorded(SEND) is None


def test_a_clear_after_a_success_sends_again_but_still_reconciles_a_lost_answer() -> None:
    store = JsonStore()
    run_try(Ledger(store, try_number=1, generation=0), [SEND], lambda send: "true_id")  # done
    assert served(store, [SEND], try_number=2, generation=0) == {SEND.chat_id: "true_id"}  # a retry: not again
    assert served(store, [SEND], try_number=2, generation=1) == {}  # a clear after a success: send anew

    lost = JsonStore()
    run_try(Ledger(lost, try_number=1, generation=0), [SEND], lambda send: ...)  # the answer was lost
    cleared = Ledger(lost, try_number=2, generation=1)
    assert [item.send for item in cleared.prepare([SEND])] == [SEND]  # reconciled before any new send


def test_a_clear_after_a_failure_finishes_the_job() -> None:
    store = JsonStore()
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222"])
    run_try(Ledger(store, try_number=1), sends, lambda send: "true_served" if send is sends[0] else None)
    assert not any(value.get("d") for value in store.values.values())  # it failed: not done
    cleared = Ledger(store, try_number=2, generation=3)
    assert cleared.prepare(sends) == []
    assert cleared.recorded(sends[0]).message_id == "true_served"  # type: ignore[union-attr]
    assert cleared.recorded(sends[1]) is None
    run_try(cleared, sends, lambda send: "true_second")
    # cleared once more, after that success: everyone again
    assert served(store, sends, try_number=3, generation=5) == {}


def test_the_same_cards_in_another_order_are_the_same_send() -> None:
    store = DictStore()
    run_try(Ledger(store, try_number=1), [SEND], lambda send: "true_id")
    reordered = build_send_contact(["79002222222", "79001111111"], phone="17472822486")
    assert served(store, [reordered], try_number=2) == {reordered.chat_id: "true_id"}


def test_verdicts_settle_lost_sends() -> None:
    sends = build_send_to_many("79009999999", ["79001111111", "79002222222", "79003333333"])
    store = JsonStore()
    run_try(Ledger(store, try_number=1), sends, lambda send: ...)  # killed before any outcome
    retry = Ledger(store, try_number=2)
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
    assert retry.recorded(sends[1]).intent.tied  # type: ignore[union-attr]  # on the gateway's clock now


def test_a_list_that_shrinks_and_grows_between_tries_loses_nothing() -> None:
    """Issue 20, item 7: with records kept by position, a shorter list left later waves' keys unread."""
    sends = build_send_to_many("79009999999", [f"7900100{n:04d}" for n in range(2 * WAVE_SIZE + 5)])
    store = JsonStore()
    run_try(Ledger(store, try_number=1), sends, lambda send: f"true_{send.chat_id}")
    run_try(Ledger(store, try_number=2), sends[:3], lambda send: "never")
    assert served(store, sends, try_number=3) == {send.chat_id: f"true_{send.chat_id}" for send in sends}


def test_without_a_store_every_send_is_lost_since_the_given_start() -> None:
    """Before Airflow 3.3, a retry takes every recipient as lost since the run started, and asks the gateway."""
    from airflow_provider_chatapi._protocol.reconcile import Intent

    since = Intent(1_800_000_000, tied=False)
    ledger = Ledger(None, lost_since=since)
    assert not ledger.durable
    assert [(item.send, item.intent) for item in ledger.prepare([SEND, ONE])] == [(SEND, since), (ONE, since)]


def test_after_a_clear_of_a_done_job_no_earlier_entry_of_a_chat_counts() -> None:
    """Try 1 lost its answer, try 2 found the card and the job was done; after a clear, try 1's intent,
    beneath try 2's id, must not come back as a lost send (whose lookup would take the old card)."""
    store = JsonStore()
    run_try(Ledger(store, try_number=1), [SEND], lambda send: ...)
    retry = Ledger(store, try_number=2)
    retry.prepare([SEND])
    retry.settle(Verdicts(found={SEND.chat_id: "true_found"}))
    (wave,) = retry.waves()
    retry.before_wave(*wave)
    retry.after_wave(*wave)
    assert store.values["chatapi_send_contact:2:0"].get("d") is True
    cleared = Ledger(store, try_number=3, generation=2)
    assert cleared.prepare([SEND]) == []
    assert cleared.recorded(SEND) is None


def test_a_clear_after_a_done_job_empties_the_old_record_so_it_stays_small() -> None:
    """The drill's clear_succeeded: two generations of 2,000 left 120 bytes a recipient in the store."""
    sends = build_send_to_many("79009999999", [f"7900100{n:04d}" for n in range(2 * WAVE_SIZE + 10)])
    store = JsonStore()
    run_try(Ledger(store, try_number=1, generation=0), sends, lambda send: f"true_{send.chat_id}_3EB031DE2C36C559")
    one_generation = sum(store.size(key) for key in store.values)
    run_try(Ledger(store, try_number=2, generation=1), sends, lambda send: f"true_{send.chat_id}_0F0F0F0F0F0F0F0F")
    assert sum(store.size(key) for key in store.values) < one_generation + 100
    assert served(store, sends, try_number=3, generation=1) == {
        send.chat_id: f"true_{send.chat_id}_0F0F0F0F0F0F0F0F" for send in sends
    }
