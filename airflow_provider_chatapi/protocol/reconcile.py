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

from airflow_provider_chatapi.protocol.errors import GatewayError
from airflow_provider_chatapi.protocol.wire import CLOCK_SKEW

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from airflow_provider_chatapi.protocol.sends import ContactSend

__all__ = ["pick_card"]

_VCARD_START = "BEGIN:VCARD"


def pick_card(
    send: ContactSend, entries: Iterable[Mapping[str, Any]], *, since: float, card_types: Collection[str]
) -> str | None:
    """The id of the entry that is the card ``send`` queued at about ``since`` (unix s), if one is.

    An entry qualifies when it is outgoing, of one of ``card_types``, in the send's chat, has a time no
    earlier than ``since`` less :data:`CLOCK_SKEW`, and its body names every card: each WhatsApp number
    as a whole number (a vCard's ``waid=``), or the name of a card without one; a vCard body must also
    hold as many cards as the send. Of those, the one nearest ``since`` wins, at or after it first.

    :raises GatewayError: two entries qualify equally well.
    """
    ranked: dict[tuple[int, float], list[str]] = {}
    for entry in entries:
        entry_time = entry.get("time")
        entry_id = entry.get("id")
        if (
            entry.get("fromMe") is True
            and entry.get("type") in card_types
            and entry.get("chatId") == send.chat_id
            and isinstance(entry_id, str)
            and entry_id
            and isinstance(entry_time, (int, float))
            and not isinstance(entry_time, bool)
            and entry_time >= since - CLOCK_SKEW
            and _names_every_card(send, entry.get("body"))
        ):
            after = entry_time >= int(since)  # history times are whole seconds
            ranked.setdefault((0 if after else 1, abs(entry_time - since)), []).append(entry_id)
    if not ranked:
        return None
    best = ranked[min(ranked)]
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
        numbers = [phone["wa_id"] for phone in card.get("phones", ()) if phone.get("wa_id")]
        if numbers:
            if not any(re.search(rf"(?<![0-9]){number}(?![0-9])", text) for number in numbers):
                return False
        elif card["name"]["formatted_name"] not in text:
            return False
    return True
