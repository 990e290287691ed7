"""Recognising our own cards in the gateway's history, after tries whose answers were lost.

The gateways have no idempotency key, so the only way to learn whether a lost send queued its card is to
look for the card. A wrong "yes" loses a card (the task succeeds and nothing is sent); a wrong "no" sends
it twice. So an entry counts only when everything we can check agrees: ours, a card of the right kind
naming every contact, in the send's chat, not another send's, and stamped at or after the send's intent
on the gateway's clock. When two entries fit, or the clocks cannot be tied while an entry could fit, the
answer is "cannot tell", which fails that send rather than guess.

A send's intent (:class:`Intent`, when it was about to be made) is placed on the gateway's clock, read from
the HTTP ``Date`` of its answers: ours plus a margin would let a card of an earlier run, queued shortly
before, pass for this one.

Every lost send of a batch is settled from one read of the history of all chats since the earliest
intent (paged by time), not two requests a recipient: :func:`history_plan` reads it, :func:`settle` judges.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_chatapi._protocol.http import ApiRequest, Call
from airflow_provider_chatapi.exceptions import GatewayError, _first_few

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

    from airflow_provider_chatapi._protocol.http import ApiResponse, Plan
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = [
    "CANNOT_TELL",
    "HISTORY_LIMIT",
    "UNTIED_MARGIN",
    "CardShape",
    "HistoryPage",
    "Intent",
    "LostSend",
    "Verdicts",
    "earliest_stamp",
    "history_plan",
    "history_request",
    "settle",
]

HISTORY_LIMIT = 1000
"""Messages asked for in one history read; a full page is read again in narrower windows."""
CANNOT_TELL = "an earlier try's outcome is unknown, and the gateway cannot tell whether its card arrived"
"""How a send that could not be settled is reported, followed by the reason."""
_VCARD_ESCAPE = re.compile(r"\\([,;\\])")
UNTIED_MARGIN = 60
"""Seconds by which the clocks of two workers may differ (NTP keeps them far closer): an intent on a
worker's clock is placed on the gateway's with this much doubt either side."""


class Intent(NamedTuple):
    """When a send was about to be made: ``at`` unix seconds on the gateway's clock when ``tied``, else on
    a worker's, off from the clock that reads it by up to ``margin`` seconds either way."""

    at: int
    tied: bool
    margin: int = 0

    @classmethod
    def on_worker_clock(cls, at: int) -> Intent:
        """An intent on the clock of the worker that wrote it, which a retry may read on another worker."""
        return cls(at, tied=False, margin=UNTIED_MARGIN)


class CardShape(NamedTuple):
    """What a send's message looks like in the gateway's history: its ``type`` values, and what shows each
    of its cards (a classic gateway sends two cards of one number as one): the numbers that may stand in
    it (any one will do), or with none, the name it shows."""

    types: Collection[str]
    cards: tuple[tuple[str, ...] | str, ...]


class LostSend(NamedTuple):
    """A send an earlier try made (or was about to make) whose outcome is unknown, and its intent."""

    send: ContactSend
    intent: Intent


@dataclass
class Verdicts:
    """What the gateway showed of some lost sends: each chat's card, or that nothing was queued, or why it
    cannot tell; and the gateway's clock, read on the way (seconds to add to ours)."""

    found: dict[str, str] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    unknown: dict[str, str] = field(default_factory=dict)
    offset: float | None = None


class HistoryPage(NamedTuple):
    """One history answer: its entries, and the gateway's clock when it answered."""

    entries: list[dict[str, Any]]
    offset: float | None


def earliest_stamp(intent: Intent, offset: float | None) -> int:
    """The earliest second of the gateway's clock at which a card sent after ``intent`` can be stamped: the
    intent, placed on the gateway's clock (``offset`` seconds ahead of a worker's), less its margin; 0 (all of
    the history) when the intent is on a worker's clock and the gateway's is not known at all."""
    if intent.tied:
        return intent.at - intent.margin
    return 0 if offset is None else math.floor(intent.at + offset) - intent.margin


def history_request(chat_id: str | None, *, min_time: int, max_time: int | None = None) -> ApiRequest:
    """``messages`` from ``min_time`` to ``max_time`` (unix s, the gateway's clock, both included), of one
    chat or of all."""
    params = {"chatId": chat_id, "min_time": max(0, min_time), "max_time": max_time, "limit": HISTORY_LIMIT}
    return ApiRequest("GET", "messages", {name: str(value) for name, value in params.items() if value is not None})


def history_plan(chat_id: str | None, min_time: int, parse: Callable[[ApiResponse], HistoryPage]) -> Plan[HistoryPage]:
    """Every message of the chat (or of all chats) since ``min_time``, however many pages it takes.

    A page as long as :data:`HISTORY_LIMIT` may have been cut short at either end (the gateway's order
    is not documented), so the seconds at its edges are read again as windows of their own, until every
    window answered fewer. A single second holding a full page cannot be read whole: "cannot tell".
    """
    windows: list[tuple[int, int | None]] = [(min_time, None)]
    entries: dict[str, dict[str, Any]] = {}
    offset: float | None = None
    while windows:
        low, high = windows.pop()
        page: HistoryPage = yield Call(history_request(chat_id, min_time=low, max_time=high), parse)
        offset = page.offset if page.offset is not None else offset
        for entry in page.entries:
            entries.setdefault(str(entry.get("id")), entry)
        if len(page.entries) < HISTORY_LIMIT:
            continue
        stamps = [int(stamp) for stamp in map(_stamp, page.entries) if stamp is not None]
        edges = ((low, min(stamps)), (max(stamps), high)) if stamps else ()
        narrower = [window for window in edges if window != (low, high)]
        if not narrower:
            raise GatewayError(
                "messages",
                f"listed {HISTORY_LIMIT} messages or more in one second, so it cannot list them all: cannot tell "
                "whether the cards arrived",
            )
        windows.extend(narrower)
    return HistoryPage(list(entries.values()), offset)


def settle(
    lost: Sequence[LostSend],
    entries: Iterable[Mapping[str, Any]],
    *,
    offset: float | None,
    card_shape: Callable[[ContactSend], CardShape],
    owners: Mapping[str, str],
    shared: bool,
    complete: bool = True,
) -> Verdicts:
    """Judge each lost send against the gateway's ``entries`` (its history, and the classic queue).

    ``owners`` maps the message ids on record to their chats: another chat's card is never this send's.
    An entry that names no chat (a classic queue entry may not) counts only for a ledger of one send
    (not ``shared``). ``complete`` false says the entries may not hold every card since the intents (a
    queue listed in part): then finding nothing means "cannot tell", not "absent".
    """
    by_chat: dict[str | None, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in entries:
        chat = entry.get("chatId") or (entry.get("metadata") or {}).get("chatId")
        by_chat[chat if isinstance(chat, str) and chat else None].append(entry)
    verdicts = Verdicts(offset=offset)
    for send, intent in lost:
        chat, shape, margin = send.chat_id, card_shape(send), intent.margin
        since, clock_unknown = earliest_stamp(intent, offset), offset is None and not intent.tied
        named, unnamed = (
            [entry for entry in by_chat.get(key, ()) if _is_our_card(chat, entry, shape, owners)]
            for key in (chat, None)
        )
        # With the gateway's clock unknown, any candidate could be an older card (the gateway could be hours off
        # our clock); with an intent on a worker's clock, one stamped within its margin could be.
        near = [e for e in named + unnamed if clock_unknown or (margin and _stamped(e, since, since + 2 * margin))]
        if near:
            verdicts.unknown[chat] = (
                "the gateway's answers carry no Date header, so its clock cannot be tied to the earlier try's"
                if clock_unknown
                else f"the earlier try's intent is on its worker's clock, known to within {margin} s"
            ) + f", and {_ids(near)} could be its card or an older one"
            continue
        groups = (  # the chat's stamped candidates since the intent, then its unstamped ones, then no chat's
            [entry for entry in named if _stamp(entry) is not None and _stamped(entry, since)],
            [entry for entry in named if _stamp(entry) is None],
            [entry for entry in unnamed if _stamped(entry, since)],
        )
        group = next((group for group in groups if group), [])
        ids = list(dict.fromkeys(entry["id"] for entry in group))
        if group and shared and group is groups[2]:
            verdicts.unknown[chat] = (
                f"{_ids(group)} name no chat, and other recipients of this batch were sent the same cards"
            )
        elif len(ids) > 1:
            verdicts.unknown[chat] = f"{_ids(group)} are equally likely to be its card"
        elif ids:
            verdicts.found[chat] = ids[0]
        elif complete:
            verdicts.absent.add(chat)
        else:
            verdicts.unknown[chat] = "its card is in neither the history nor the part of the outbound queue listed"
    return verdicts


def _stamp(entry: Mapping[str, Any]) -> float | None:
    """When the gateway stamped the entry (a queue entry: its last try), on the gateway's clock."""
    stamped = entry.get("time", entry.get("last_try"))
    return float(stamped) if isinstance(stamped, (int, float)) and not isinstance(stamped, bool) else None


def _stamped(entry: Mapping[str, Any], low: int, high: float = math.inf) -> bool:
    """Whether the entry may have been stamped in [low, high): stamped so, or not stamped at all."""
    stamped = _stamp(entry)
    return stamped is None or low <= stamped < high


def _ids(entries: Iterable[Mapping[str, Any]]) -> str:
    return _first_few(list(dict.fromkeys(str(entry["id"]) for entry in entries)))


def _is_our_card(chat: str, entry: Mapping[str, Any], shape: CardShape, owners: Mapping[str, str]) -> bool:
    """Whether the entry could be the card of a send to ``chat``: ours (the outbound queue holds only our own
    messages), of its type, no other chat's, and naming every card it carried, each by its whole number or
    by its name (a vCard writes "Lee, Ann" as "Lee\\, Ann")."""
    entry_id, body = entry.get("id"), entry.get("body")
    if entry.get("fromMe", True) is not True or entry.get("type") not in shape.types:
        return False
    if not isinstance(entry_id, str) or not entry_id or owners.get(entry_id, chat) != chat:
        return False
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if text.count("BEGIN:VCARD") not in (0, len(shape.cards)):  # as many vCards as cards, if vCards at all
        return False
    text = _VCARD_ESCAPE.sub(r"\1", text)
    return all(
        shown in text if isinstance(shown, str) else re.search(rf"(?<![0-9])({'|'.join(shown)})(?![0-9])", text)
        for shown in shape.cards
    )
