"""Recognising our own card in a chat's history, after a try whose answer was lost.

The gateways have no idempotency key, so the only way to learn whether a lost send queued its card is to
look for the card. A wrong "yes" loses a card (the task succeeds and nothing is sent); a wrong "no" sends
it twice. So an entry counts only when everything we can check agrees, and when two entries fit equally
well the answer is "cannot tell", which fails the task rather than guess.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi._protocol.answers import object_list
from airflow_provider_chatapi._protocol.cards import card_whatsapp_ids
from airflow_provider_chatapi._protocol.http import ApiRequest
from airflow_provider_chatapi.exceptions import GatewayError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["CLOCK_SKEW", "HISTORY_LIMIT", "history_page", "history_request", "pick_card"]

CLOCK_SKEW = 120.0
"""Seconds by which the gateway's clock may differ from ours when looking for a message sent since a time."""

HISTORY_LIMIT = 1000
"""Messages asked for when looking for a card since an intent; the time bound does the narrowing."""
_VCARD_START = "BEGIN:VCARD"


def history_request(chat_id: str, *, since: float) -> ApiRequest:
    """A chat's ``messages`` since ``since`` (unix seconds, less :data:`CLOCK_SKEW`): where a sent card shows.

    The time bound does the narrowing; :data:`HISTORY_LIMIT` only guards against a page cut short.
    """
    min_time = max(0, int(since - CLOCK_SKEW))
    params = {"chatId": chat_id, "min_time": str(min_time), "limit": str(HISTORY_LIMIT)}
    return ApiRequest("GET", "messages", params=params)


def history_page(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The messages of a history answer, when they can be trusted to hold every message since the intent.

    A page as long as :data:`HISTORY_LIMIT` may have been cut short: the card could lie beyond it, and
    not finding it would send it twice. Then the answer is "cannot tell".
    """
    messages = object_list(payload, "messages", "messages")
    if len(payload.get("messages") or ()) >= HISTORY_LIMIT:
        raise GatewayError(
            "messages",
            f"answered with {HISTORY_LIMIT} messages or more since the earlier try, so it may not have listed "
            "them all: cannot tell whether the card arrived",
        )
    return messages


def pick_card(
    send: ContactSend,
    entries: Iterable[Mapping[str, Any]],
    *,
    since: float,
    card_types: Collection[str],
    claimed: Collection[str] = (),
    shared: bool = False,
) -> str | None:
    """The id of the entry that is the card ``send`` queued at about ``since`` (unix s), if one is.

    An entry qualifies when it is outgoing, of one of ``card_types``, not an id in ``claimed`` (another
    recipient's card), in the send's chat, no older than ``since`` less :data:`CLOCK_SKEW`, and its body
    names every card: each WhatsApp number as a whole number (a vCard's ``waid=``), or the name of a card
    without one; a vCard body must also hold as many cards as the send. An entry that gives no chat (a
    classic queue entry may not) qualifies only for a send that does not share its ledger with other
    recipients (``shared``), and one that gives no time ranks last. Of those that qualify, the one
    nearest ``since`` wins, at or after it first.

    :raises GatewayError: two entries qualify equally well; or none does, but a matching entry without
        a chat could be this send's card as well as another recipient's.
    """
    ranked: dict[tuple[int, float], list[str]] = {}
    unattributed: list[str] = []
    for entry in entries:
        entry_id = entry.get("id")
        chat = entry.get("chatId") or (entry.get("metadata") or {}).get("chatId")
        entry_time = entry.get("time", entry.get("last_try"))
        timed = isinstance(entry_time, (int, float)) and not isinstance(entry_time, bool)
        if (
            entry.get("fromMe", True) is True  # the outbound queue holds only our own messages
            and entry.get("type") in card_types
            and isinstance(entry_id, str)
            and entry_id
            and entry_id not in claimed
            and (chat == send.chat_id or chat is None)
            and (not timed or entry_time >= since - CLOCK_SKEW)
            and _names_every_card(send, entry.get("body"))
        ):
            if chat is None and shared:
                unattributed.append(entry_id)
                continue
            rank = (0 if entry_time >= int(since) else 1, abs(entry_time - since)) if timed else (2, 0.0)
            ranked.setdefault(rank, []).append(entry_id)
    if not ranked and unattributed:
        raise GatewayError(
            "showMessagesQueue",
            f"cannot tell whose card {', '.join(unattributed)} is: it names no chat, and several recipients "
            "of this batch were sent the same cards",
        )
    if not ranked:
        return None
    best = list(dict.fromkeys(ranked[min(ranked)]))  # the history and the queue may list one message
    if len(best) > 1:
        raise GatewayError(
            "messages",
            f"cannot tell which of these equally likely messages is the earlier try's card: {', '.join(best)}",
        )
    return best[0]


def _names_every_card(send: ContactSend, body: Any) -> bool:
    text = body if isinstance(body, str) else json.dumps(body)
    if _VCARD_START in text and text.count(_VCARD_START) != len(send.contacts):
        return False
    for card in send.contacts:
        numbers = card_whatsapp_ids(card)
        if numbers:
            if not any(re.search(rf"(?<![0-9]){number}(?![0-9])", text) for number in numbers):
                return False
        elif card["name"]["formatted_name"] not in text:
            return False
    return True
