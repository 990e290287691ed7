"""Recognising an earlier try's card in the gateway's history (or the classic gateway's queue), for each
dialect: what counts as the card, what does not, when the gateway cannot tell, on whose clock, and how the
history of a whole batch is read in few pages."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_chatapi._protocol import classic, onemsg
from airflow_provider_chatapi._protocol.reconcile import (
    HISTORY_LIMIT,
    UNTIED_MARGIN,
    HistoryPage,
    Intent,
    LostSend,
    Verdicts,
    history_plan,
    history_request,
    settle,
)
from airflow_provider_chatapi._protocol.sends import build_send_contact, build_send_to_many
from airflow_provider_chatapi.exceptions import GatewayError

SINCE = 1_800_000_000
"""When the earlier try recorded its intent, on the gateway's clock."""

SEND = build_send_contact(["79001111111", "79002222222"], phone="17472822486")
ONE = build_send_contact("79001111111", chat_id="120363041234567890@g.us")
SEND_TO_GROUP = build_send_contact(["4915112345678", "79002222222"], chat_id="120363041234567890@g.us")


def sent_card(message_id: str, card_type: str, chat_id: str, *, at: int, body: str) -> dict[str, Any]:
    """The history entry of a card this instance sent."""
    return {"id": message_id, "type": card_type, "fromMe": True, "chatId": chat_id, "time": at, "body": body}


def entry(card: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A history entry: ``card`` with these fields changed."""
    return {**card, **changes}


# SEND's card in the classic gateway's history, and SEND_TO_GROUP's in 1msg's.
CLASSIC_CARD = sent_card(
    "true_17472822486@c.us_AAA",
    "multi_vcard",
    "17472822486@c.us",
    at=SINCE + 5,
    body="BEGIN:VCARD TEL;waid=79001111111 … BEGIN:VCARD TEL;waid=79002222222",
)
VCARDS = (
    "BEGIN:VCARD\nFN:A\nTEL;type=CELL;waid=4915112345678:+49 1511 2345678\nEND:VCARD\n"
    "BEGIN:VCARD\nFN:B\nTEL;type=CELL;waid=79002222222:+7 900 222-22-22\nEND:VCARD"
)
ONEMSG_CARD = sent_card("wamid.OURS", "contacts", "120363041234567890@g.us", at=SINCE + 1, body=VCARDS)


def judge(
    send: Any,
    entries: list[dict[str, Any]],
    *,
    since: int = SINCE,
    tied: bool = True,
    offset: float | None = 0.0,
    dialect: str = "chatapi",
    owners: dict[str, str] | None = None,
    shared: bool = False,
    complete: bool = True,
) -> Verdicts:
    """What :func:`settle` makes of ``send``, lost after an intent at ``since``, among ``entries``."""
    card_shape = onemsg.ONEMSG.card_shape if dialect == "1msg" else classic.CLASSIC.card_shape
    lost = [LostSend(send, Intent(since, tied=True) if tied else Intent.on_worker_clock(since))]
    return settle(
        lost, entries, offset=offset, card_shape=card_shape, owners=owners or {}, shared=shared, complete=complete
    )


def find(send: Any, entries: list[dict[str, Any]], **rules: Any) -> str | None:
    """The id taken for ``send``; None when it is certainly absent; GatewayError-like failure when unknown."""
    verdicts = judge(send, entries, **rules)
    if send.chat_id in verdicts.unknown:
        raise GatewayError("messages", verdicts.unknown[send.chat_id])
    assert (send.chat_id in verdicts.found) != (send.chat_id in verdicts.absent)
    return verdicts.found.get(send.chat_id)


# ---- the classic gateway ------------------------------------------------------------------------


def test_the_history_query() -> None:
    request = history_request("17472822486@c.us", min_time=SINCE)
    assert (request.method, request.endpoint) == ("GET", "messages")
    assert dict(request.params) == {"chatId": "17472822486@c.us", "min_time": str(SINCE), "limit": str(HISTORY_LIMIT)}
    every_chat = history_request(None, min_time=SINCE, max_time=SINCE + 9)
    assert dict(every_chat.params) == {"min_time": str(SINCE), "max_time": str(SINCE + 9), "limit": str(HISTORY_LIMIT)}
    assert SEND.chat_id == "17472822486@c.us"
    assert ONE.chat_id == "120363041234567890@g.us"


def test_a_matching_card_is_found() -> None:
    assert find(SEND, [entry(CLASSIC_CARD)]) == "true_17472822486@c.us_AAA"
    assert find(SEND, [entry(CLASSIC_CARD, time=SINCE)]) == "true_17472822486@c.us_AAA"  # the intent's second


@pytest.mark.parametrize(
    "other",
    [
        entry(CLASSIC_CARD, type="vcard"),
        entry(CLASSIC_CARD, type="chat", body="79001111111 79002222222"),
        entry(CLASSIC_CARD, fromMe=False),
        entry(CLASSIC_CARD, chatId="79005555555@c.us"),
        entry(CLASSIC_CARD, time=SINCE - 1),
        entry(CLASSIC_CARD, body="BEGIN:VCARD TEL;waid=79001111111"),
        entry(CLASSIC_CARD, id=None),
    ],
    ids=["one contact", "text message", "incoming", "other chat", "a second before", "other contacts", "no id"],
)
def test_other_messages_are_not_taken_for_the_card(other: dict[str, Any]) -> None:
    assert find(SEND, [other]) is None


def test_a_queue_entry_without_chat_is_claimed_only_by_a_lone_send() -> None:
    queued = {"id": "true_q", "type": "vcard", "body": "TEL;waid=79001111111", "last_try": None, "metadata": {}}
    other = {"id": "x", "type": "vcard", "body": "79009999999"}
    assert find(ONE, [other, queued]) == "true_q"  # a lone send: the entry can only be its card
    with pytest.raises(GatewayError, match="true_q name no chat, and other recipients"):  # in a batch: anyone's
        find(ONE, [other, queued], shared=True)
    mine = {**queued, "id": "true_mine", "metadata": {"chatId": ONE.chat_id}}
    assert find(ONE, [queued, mine], shared=True) == "true_mine"  # one that names the chat wins


def test_a_queue_listed_in_part_cannot_show_a_card_absent() -> None:
    with pytest.raises(GatewayError, match="part of the outbound queue listed"):
        find(SEND, [], complete=False)
    assert find(SEND, [entry(CLASSIC_CARD)], complete=False) == "true_17472822486@c.us_AAA"


# ---- the gateway's clock ------------------------------------------------------------------------


def test_an_earlier_runs_card_is_never_taken_for_this_one() -> None:
    """Issue 15: the same broadcast twice; run 2's answer lost. Run 1's card, seconds before run 2's
    intent, used to pass within the two minutes' margin, and run 2's card was never sent."""
    run_1 = entry(CLASSIC_CARD, id="true_RUN1", time=SINCE - 3)
    assert find(SEND, [run_1]) is None
    run_2 = entry(CLASSIC_CARD, id="true_RUN2", time=SINCE + 1)
    assert find(SEND, [run_1, run_2]) == "true_RUN2"


def test_an_intent_on_a_workers_clock_is_placed_on_the_gateways_with_its_margin() -> None:
    """The worker that wrote the intent and the one that reads it may disagree by up to the margin: a card
    stamped within it of the intent could be an older card, one beyond it after the intent is ours."""
    ours = SINCE  # the intent, on its worker's clock; the gateway's runs 300 s ahead of the reader's
    later = entry(CLASSIC_CARD, time=ours + 300 + UNTIED_MARGIN)
    near = entry(CLASSIC_CARD, id="true_NEAR", time=ours + 300 + 1)
    older = entry(CLASSIC_CARD, id="true_OLDER", time=ours + 300 - UNTIED_MARGIN - 1)
    assert find(SEND, [later, older], since=ours, tied=False, offset=300.4) == "true_17472822486@c.us_AAA"
    assert find(SEND, [older], since=ours, tied=False, offset=300.4) is None
    with pytest.raises(GatewayError, match=r"worker's clock.*true_NEAR"):
        find(SEND, [near], since=ours, tied=False, offset=300.4)
    behind = entry(CLASSIC_CARD, time=ours - 200 + UNTIED_MARGIN)  # a gateway 200 s behind
    assert find(SEND, [behind], since=ours, tied=False, offset=-200.0) == "true_17472822486@c.us_AAA"


@pytest.mark.parametrize("stamped", [SINCE + 5, SINCE - 30, SINCE - 3600, None])
def test_without_a_date_any_card_at_all_means_cannot_tell(stamped: int | None) -> None:
    """With no Date the gateway's clock is unknown: it may be hours behind, so even a card far older than
    the intent on our clock may be the lost one (issue 20: a gateway 120 s behind got a second card)."""
    card = entry(CLASSIC_CARD, time=stamped)
    with pytest.raises(GatewayError, match=r"no Date header.*true_17472822486@c.us_AAA"):
        find(SEND, [card], tied=False, offset=None)
    assert find(SEND, [], tied=False, offset=None) is None  # no such card at all: certainly not sent


# ---- 1msg ----------------------------------------------------------------------------------------


def test_our_card_is_found() -> None:
    assert find(SEND_TO_GROUP, [entry(ONEMSG_CARD)], dialect="1msg") == "wamid.OURS"


@pytest.mark.parametrize(
    "body",
    [
        "BEGIN:VCARD\nVERSION:3.0\nN:Lee;Ann\\, Jr.;;;\nFN:Lee\\, Ann\\; Acme\nEND:VCARD",  # a vCard's escapes
        {"contacts": [{"name": {"formatted_name": "Lee, Ann; Acme"}}]},  # a JSON object, not text
    ],
    ids=["vcard escapes", "json object"],
)
def test_a_card_without_a_number_is_found_by_its_name_however_the_body_writes_it(body: Any) -> None:
    """Issue 20, item 7: a real vCard writes "Lee, Ann" as "Lee\\, Ann", and 1msg may answer a body as an
    object: either way the name is the card's."""
    nameless = build_send_contact(
        contacts=[{"name": "Lee, Ann; Acme", "email": "ann@example.com"}], phone="17472822486"
    )
    card = sent_card("wamid.NAMED", "contacts", nameless.chat_id, at=SINCE + 1, body=body)  # type: ignore[arg-type]
    assert find(nameless, [card], dialect="1msg") == "wamid.NAMED"


@pytest.mark.parametrize(
    "other",
    [
        entry(ONEMSG_CARD, chatId="79005555555@c.us"),
        entry(ONEMSG_CARD, fromMe=False),
        entry(ONEMSG_CARD, type="chat"),
        entry(ONEMSG_CARD, time=SINCE - 1),
        entry(ONEMSG_CARD, body=VCARDS.replace("4915112345678", "49151123456789")),  # a longer number holds ours
        entry(ONEMSG_CARD, body=VCARDS.split("BEGIN:VCARD\nFN:B")[0]),  # one card of the two
        entry(ONEMSG_CARD, body=VCARDS + "\nBEGIN:VCARD\nFN:C\nTEL;waid=79003333333:+7\nEND:VCARD"),  # three cards
        entry(ONEMSG_CARD, id=""),
    ],
    ids=["other chat", "incoming", "text", "too old", "substring", "fewer", "more", "no id"],
)
def test_what_is_not_our_card(other: dict[str, Any]) -> None:
    assert find(SEND_TO_GROUP, [other], dialect="1msg") is None


def test_an_entry_without_chat_or_time_counts_last_and_only_for_a_lone_send() -> None:
    chatless, untimed = (
        entry(ONEMSG_CARD, id="wamid.NOCHAT", chatId=None),
        entry(ONEMSG_CARD, id="wamid.NOTIME", time=None),
    )
    assert find(SEND_TO_GROUP, [chatless], dialect="1msg") == "wamid.NOCHAT"
    with pytest.raises(GatewayError, match="name no chat"):
        find(SEND_TO_GROUP, [chatless], dialect="1msg", shared=True)
    timed = entry(ONEMSG_CARD, id="wamid.TIMED", time=SINCE + 50)
    assert find(SEND_TO_GROUP, [untimed, timed], dialect="1msg") == "wamid.TIMED"
    assert find(SEND_TO_GROUP, [untimed], dialect="1msg") == "wamid.NOTIME"


def test_an_id_on_record_for_another_recipient_is_never_claimed() -> None:
    others = {"wamid.OURS": "79005555555@c.us"}
    assert find(SEND_TO_GROUP, [entry(ONEMSG_CARD)], dialect="1msg", owners=others) is None
    mine = entry(ONEMSG_CARD, id="wamid.MINE", time=SINCE + 9)
    assert find(SEND_TO_GROUP, [entry(ONEMSG_CARD), mine], dialect="1msg", owners=others) == "wamid.MINE"


def test_two_candidates_since_the_intent_mean_cannot_tell_and_are_listed() -> None:
    with pytest.raises(GatewayError, match=r"wamid\.A, wamid\.B are equally likely"):
        find(
            SEND_TO_GROUP,
            [entry(ONEMSG_CARD, id="wamid.A"), entry(ONEMSG_CARD, id="wamid.B", time=SINCE + 30)],
            dialect="1msg",
        )
    twice = [entry(ONEMSG_CARD), entry(ONEMSG_CARD)]  # the history and the queue may list one message
    assert find(SEND_TO_GROUP, twice, dialect="1msg") == "wamid.OURS"


# ---- a batch: one read of every chat's history, in pages ------------------------------------------


def test_a_batch_is_settled_from_one_list() -> None:
    sends = build_send_to_many("79009999999", [f"7900100{n:04d}" for n in range(300)])
    entries = [
        {
            "id": f"true_{n}",
            "type": "vcard",
            "fromMe": True,
            "chatId": send.chat_id,
            "time": SINCE + 1,
            "body": "TEL;waid=79009999999",
        }
        for n, send in enumerate(sends[:200])
    ]
    lost = [LostSend(send, Intent(SINCE, tied=True)) for send in sends]
    verdicts = settle(
        lost, entries, offset=0.0, card_shape=classic.CLASSIC.card_shape, owners={}, shared=True, complete=True
    )
    assert verdicts.found == {send.chat_id: f"true_{n}" for n, send in enumerate(sends[:200])}
    assert verdicts.absent == {send.chat_id for send in sends[200:]}
    assert not verdicts.unknown


def drive_history(messages: list[dict[str, Any]], *, newest_first: bool) -> tuple[HistoryPage, int]:
    """Run :func:`history_plan` against a gateway holding ``messages`` that answers at most a page of
    them, the newest (as the stand-in does) or the oldest; return the result and the requests made."""
    plan = history_plan(None, SINCE, lambda page: page)
    requests, answer = 0, None
    while True:
        try:
            call = plan.send(answer)
        except StopIteration as done:
            return done.value, requests
        requests += 1
        low, high = int(call.request.params["min_time"]), int(call.request.params.get("max_time", 2**62))
        window = [message for message in messages if low <= message["time"] <= high]
        page = window[-HISTORY_LIMIT:] if newest_first else window[:HISTORY_LIMIT]
        answer = HistoryPage(page, 0.0)


@pytest.mark.parametrize("newest_first", [True, False], ids=["newest first", "oldest first"])
def test_the_history_of_a_batch_is_read_whole_in_few_pages(newest_first: bool) -> None:
    messages = [{"id": f"m{n}", "time": SINCE + n // 40} for n in range(2500)]  # 40 a second
    page, requests = drive_history(messages, newest_first=newest_first)
    assert sorted(entry["id"] for entry in page.entries) == sorted(message["id"] for message in messages)
    assert requests <= 8


def test_a_second_holding_a_full_page_cannot_be_read_whole() -> None:
    messages = [{"id": f"m{n}", "time": SINCE} for n in range(HISTORY_LIMIT)]
    with pytest.raises(GatewayError, match="in one second"):
        drive_history(messages, newest_first=True)
