"""Recognising an earlier try's card in the gateway's history (or the classic gateway's queue), for each
dialect: what counts as the card, what does not, and when the gateway cannot tell."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_chatapi._protocol import classic, onemsg
from airflow_provider_chatapi._protocol.reconcile import CLOCK_SKEW, HISTORY_LIMIT, history_request, pick_card
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi.exceptions import GatewayError

SINCE = 1_800_000_000.0
"""When the earlier try recorded its intent."""
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
    at=int(SINCE) + 5,
    body="BEGIN:VCARD TEL;waid=79001111111 … BEGIN:VCARD TEL;waid=79002222222",
)
VCARDS = (
    "BEGIN:VCARD\nFN:A\nTEL;type=CELL;waid=4915112345678:+49 1511 2345678\nEND:VCARD\n"
    "BEGIN:VCARD\nFN:B\nTEL;type=CELL;waid=79002222222:+7 900 222-22-22\nEND:VCARD"
)
ONEMSG_CARD = sent_card("wamid.OURS", "contacts", "120363041234567890@g.us", at=int(SINCE) + 1, body=VCARDS)


def find(
    send: Any, entries: list[dict[str, Any]], *, since: float, dialect: str = "chatapi", **rules: Any
) -> str | None:
    """The id :func:`pick_card` takes for ``send`` among ``entries``, with the card types of ``dialect``."""
    card_types = onemsg.CARD_TYPES if dialect == "1msg" else classic.card_types(send)
    return pick_card(send, entries, since=since, card_types=card_types, **rules)


# ---- the classic gateway ------------------------------------------------------------------------


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
    assert find(SEND, [entry(CLASSIC_CARD)], since=SINCE) == "true_17472822486@c.us_AAA"
    older_but_within_skew = entry(CLASSIC_CARD, time=int(SINCE - CLOCK_SKEW) + 1)
    assert find(SEND, [older_but_within_skew], since=SINCE)


@pytest.mark.parametrize(
    "other",
    [
        entry(CLASSIC_CARD, type="vcard"),
        entry(CLASSIC_CARD, type="chat", body="79001111111 79002222222"),
        entry(CLASSIC_CARD, fromMe=False),
        entry(CLASSIC_CARD, chatId="79005555555@c.us"),
        entry(CLASSIC_CARD, time=int(SINCE - CLOCK_SKEW) - 1),
        entry(CLASSIC_CARD, body="BEGIN:VCARD TEL;waid=79001111111"),
        entry(CLASSIC_CARD, id=None),
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


# ---- 1msg ----------------------------------------------------------------------------------------


def test_the_history_query_is_bounded_by_time() -> None:
    params = dict(history_request(SEND_TO_GROUP.chat_id, since=SINCE).params)
    assert params["chatId"] == SEND_TO_GROUP.chat_id and params["min_time"] == str(int(SINCE - CLOCK_SKEW))


def test_our_card_is_found() -> None:
    assert find(SEND_TO_GROUP, [entry(ONEMSG_CARD)], since=SINCE, dialect="1msg") == "wamid.OURS"


@pytest.mark.parametrize(
    "other",
    [
        entry(ONEMSG_CARD, chatId="79005555555@c.us"),
        entry(ONEMSG_CARD, fromMe=False),
        entry(ONEMSG_CARD, type="chat"),
        entry(ONEMSG_CARD, time=int(SINCE - CLOCK_SKEW) - 1),
        entry(ONEMSG_CARD, body=VCARDS.replace("4915112345678", "49151123456789")),  # a longer number holds ours
        entry(ONEMSG_CARD, body=VCARDS.split("BEGIN:VCARD\nFN:B")[0]),  # one card of the two
        entry(ONEMSG_CARD, body=VCARDS + "\nBEGIN:VCARD\nFN:C\nTEL;waid=79003333333:+7\nEND:VCARD"),  # three cards
        entry(ONEMSG_CARD, id=""),
    ],
    ids=["other chat", "incoming", "text", "too old", "substring", "fewer", "more", "no id"],
)
def test_what_is_not_our_card(other: dict[str, Any]) -> None:
    assert find(SEND_TO_GROUP, [other], since=SINCE, dialect="1msg") is None


def test_an_entry_without_chat_or_time_counts_last_and_only_for_a_lone_send() -> None:
    chatless, untimed = (
        entry(ONEMSG_CARD, id="wamid.NOCHAT", chatId=None),
        entry(ONEMSG_CARD, id="wamid.NOTIME", time=None),
    )
    assert find(SEND_TO_GROUP, [chatless], since=SINCE, dialect="1msg") == "wamid.NOCHAT"
    with pytest.raises(GatewayError, match="cannot tell whose card"):
        find(SEND_TO_GROUP, [chatless], since=SINCE, dialect="1msg", shared=True)
    assert (
        find(
            SEND_TO_GROUP,
            [untimed, entry(ONEMSG_CARD, id="wamid.TIMED", time=int(SINCE) + 50)],
            since=SINCE,
            dialect="1msg",
        )
        == "wamid.TIMED"
    )
    assert find(SEND_TO_GROUP, [untimed], since=SINCE, dialect="1msg") == "wamid.NOTIME"


def test_an_id_on_record_for_another_recipient_is_never_claimed() -> None:
    assert find(SEND_TO_GROUP, [entry(ONEMSG_CARD)], since=SINCE, dialect="1msg", claimed={"wamid.OURS"}) is None
    mine = entry(ONEMSG_CARD, id="wamid.MINE", time=int(SINCE) + 9)
    assert (
        find(SEND_TO_GROUP, [entry(ONEMSG_CARD), mine], since=SINCE, dialect="1msg", claimed={"wamid.OURS"})
        == "wamid.MINE"
    )


def test_the_nearest_candidate_wins_at_or_after_the_intent_first() -> None:
    before = entry(ONEMSG_CARD, id="wamid.BEFORE", time=int(SINCE) - 1)
    later = entry(ONEMSG_CARD, id="wamid.LATER", time=int(SINCE) + 30)
    after = entry(ONEMSG_CARD, id="wamid.AFTER", time=int(SINCE) + 2)
    assert find(SEND_TO_GROUP, [before, later, after], since=SINCE, dialect="1msg") == "wamid.AFTER"
    assert (
        find(
            SEND_TO_GROUP,
            [before, entry(ONEMSG_CARD, id="wamid.OLD", time=int(SINCE) - 60)],
            since=SINCE,
            dialect="1msg",
        )
        == "wamid.BEFORE"
    )


def test_two_equally_likely_candidates_mean_cannot_tell() -> None:
    with pytest.raises(GatewayError, match=r"cannot tell which .*wamid\.A, wamid\.B"):
        find(
            SEND_TO_GROUP,
            [entry(ONEMSG_CARD, id="wamid.A"), entry(ONEMSG_CARD, id="wamid.B")],
            since=SINCE,
            dialect="1msg",
        )
