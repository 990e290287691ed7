"""Delivery acks, with no I/O: asking 1msg how far a message got, and reading the answer.

1msg's ``GET hookInfo?messageId=…`` ("Check ACKs", contract 2.39.0 only) answers ``{"hooks": [...]}``, one
entry per WhatsApp status event of the message, in Meta's status shape (``status``, ``timestamp``, and
``errors[]`` on a failure) or 1msg's own (``error`` as text). Events come in any order, so a message's state
is the furthest one seen: ``sent`` < ``delivered`` < ``read`` (``played`` and ``viewed`` count as read), and a
``failed`` counts only while nothing was delivered. A channel whose API lacks the endpoint (a 404, or an
answer with no ``hooks``) cannot report delivery by message id at all; the classic protocol never can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi._protocol.http import ApiRequest, checked_payload, object_list
from airflow_provider_chatapi._protocol.whatsapp import checked_message_id, parse_literal
from airflow_provider_chatapi.exceptions import (
    DeliveryFailedError,
    DeliveryReportUnavailableError,
    GatewayError,
    InvalidInputError,
    NotSentError,
    RejectedError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_provider_chatapi._protocol.http import ApiResponse

__all__ = [
    "ERROR_MEANINGS",
    "FAILURE_DETAILS",
    "Delivery",
    "DeliveryWatch",
    "checked_message_ids",
    "delivery_request",
    "furthest",
    "parse_delivery",
    "reached",
    "tally",
]

SENT, DELIVERED, READ, FAILED = "sent", "delivered", "read", "failed"
_RANK = {SENT: 1, DELIVERED: 2, READ: 3}
_ALIASES = {"viewed": READ, "played": READ, "seen": READ}
# What a ``failed`` event carries of its DeliveryFailedError (each an attribute of Delivery too), to build it
# again where the task resumes.
FAILURE_DETAILS = ("message_id", "reason", "code", "meaning", "recipient")
_NOT_A_REPORT = "this channel's API cannot report delivery by message id (no Check ACKs endpoint)"

# What Meta's error codes in a failed ack mean to the sender.
ERROR_MEANINGS = {
    131047: "the 24-hour customer-service window was closed: send a template message to open a conversation",
    131026: "the number cannot receive it (not on WhatsApp, terms not accepted, or an outdated app)",
    131049: "WhatsApp held it back to keep a healthy ecosystem (a marketing limit for this user)",
    130472: "the user's number is part of a WhatsApp experiment and does not receive such messages",
}
# 1msg's own failed acks carry text only: the code is recognised from WhatsApp's words.
_CODES_BY_TEXT = (
    (re.compile(r"experiment", re.IGNORECASE), 130472),
    (re.compile(r"healthy ecosystem|marketing.*limit|frequency cap", re.IGNORECASE), 131049),
    (re.compile(r"outside.*window|dialog window is closed|re-?engagement|24-hour|requires a template", re.I), 131047),
    (re.compile(r"undeliverable|not (?:a )?(?:valid )?whatsapp", re.IGNORECASE), 131026),
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """How far one message got: its furthest ``state`` (None before any event), why it failed, and the chat it
    went to as the acks name it (``recipient``: 1msg's ``chatId``, or Meta's ``recipient_id``; None if neither)."""

    message_id: str
    state: str | None
    reason: str | None = None
    code: int | None = None
    recipient: str | None = None

    @property
    def meaning(self) -> str | None:
        """What the failure's code means to the sender, where it is known."""
        return ERROR_MEANINGS.get(self.code) if self.code is not None else None


def checked_message_ids(value: Any) -> list[str]:
    """The ids to wait for, however they arrived: one id, a list (a fan-out's XCom), or a rendered list."""
    items = value
    if isinstance(value, str):  # one id, or a list rendered by a non-native template (as its repr)
        items = parse_literal(value.strip()) if value.strip()[:1] in ("[", "(") else [value]
    if not isinstance(items, (list, tuple)) or not items:
        raise InvalidInputError("message_ids", value, "give one message id or a non-empty list of them")
    # Each id once, in order.
    return list(dict.fromkeys(checked_message_id(item, field=f"message_ids[{i}]") for i, item in enumerate(items)))


def reached(state: str | None, wait_for: str) -> bool:
    """Whether a message in ``state`` is as far as ``wait_for`` (``read`` also satisfies ``delivered``)."""
    return state in _RANK and _RANK[state] >= _RANK[wait_for]


def tally(states: Mapping[str, str | None], wait_for: str) -> str:
    """How far a wait for ``states`` got, for a person: ``180/200 delivered (12 read), 0 failed, 20 waiting``."""
    done = sum(reached(state, wait_for) for state in states.values())
    failed = sum(state == FAILED for state in states.values())
    read = sum(state == READ for state in states.values()) if wait_for == DELIVERED else 0
    also_read = f" ({read} read)" if read else ""
    return f"{done}/{len(states)} {wait_for}{also_read}, {failed} failed, {len(states) - done - failed} waiting"


def delivery_request(message_id: str) -> ApiRequest:
    """The request for the acks of one message."""
    return ApiRequest("GET", "hookInfo", params={"messageId": message_id})


def parse_delivery(message_id: str, response: ApiResponse) -> Delivery:
    """The state the acks in ``response`` show for ``message_id``.

    :raises DeliveryReportUnavailableError: the channel has no such endpoint (404, or no ``hooks``).
    """
    try:
        payload = checked_payload(response, "hookInfo", has_side_effect=False)
    except RejectedError as error:
        if error.status_code != 404:
            raise
        raise DeliveryReportUnavailableError(f"{error.gateway_message}; {_NOT_A_REPORT}", status_code=404) from None
    if "hooks" not in payload:
        raise DeliveryReportUnavailableError(f"hookInfo answered without 'hooks': {_NOT_A_REPORT}", status_code=200)
    return furthest(message_id, object_list(payload, "hooks", "hookInfo"), shown=response.shown)


def furthest(message_id: str, events: Iterable[Mapping[str, Any]], *, shown: Any = str) -> Delivery:
    """The furthest state among ``events`` (any order); a failure only when nothing was delivered."""
    ours = [event for event in events if event.get("id") in (None, "", message_id)]  # not another message's
    best: str | None = None
    failed: Mapping[str, Any] | None = None  # the first failed event
    for event in ours:
        status = str(event.get("status") or "").strip().lower()
        status = _ALIASES.get(status, status)
        if status in _RANK and not reached(best, status):
            best = status
        elif status == FAILED:
            failed = failed or event
    # Any event of the message may name its chat, a failed one (the one that matters) need not: 1msg's chatId
    # (79001111111@c.us), else Meta's recipient_id (digits, which hookInfo's 2.39.0 contract lists).
    names = [event.get(key) for event in ours for key in ("chatId", "recipient_id")]
    texts = [str(name).strip() for name in names if isinstance(name, str | int) and not isinstance(name, bool)]
    recipient = next((shown(text) for text in texts if text), None)
    if failed is not None and not reached(best, DELIVERED):
        reason, code = _failure(failed)
        return Delivery(message_id, FAILED, shown(reason), code, recipient)
    return Delivery(message_id, best, recipient=recipient)


def _failure(event: Mapping[str, Any]) -> tuple[str, int | None]:
    """A failed event's reason and code: Meta's ``errors[]`` objects, or 1msg's ``error`` (text or an object)."""
    error = event.get("error")
    details = [detail for detail in [*(event.get("errors") or ()), error] if isinstance(detail, dict)]
    words: list[str] = []
    for detail in details:
        text = detail.get("title") or detail.get("message") or ""
        data = detail.get("error_data")
        extra = (data.get("details") if isinstance(data, dict) else None) or detail.get("details")
        words.append(f"{text}: {extra}" if text and extra and extra != text else str(text or extra or ""))
    if isinstance(error, str):
        words.append(error.strip())
    reason = "; ".join(word for word in words if word) or "the gateway gave no reason"
    codes = [d["code"] for d in details if isinstance(d.get("code"), int) and not isinstance(d.get("code"), bool)]
    recognised = (known for pattern, known in _CODES_BY_TEXT if pattern.search(reason))
    return reason, codes[0] if codes else next(recognised, None)


class DeliveryWatch:
    """The wait for a set of messages to reach ``wait_for``, one poll at a time; no I/O.

    Each poll's results go to :meth:`absorb`, which says whether the wait is over (and how) and whether the
    gateway asked to back off. States only move forward. What ends it, as a JSON-ready event: every message
    reached ``wait_for`` (``success``, with each message's state); one failed (``failed``); the channel cannot
    report (``unavailable``); a permanent error (``error``).
    """

    def __init__(self, message_ids: Sequence[str], wait_for: str) -> None:
        self.wait_for = wait_for
        self.states: dict[str, str | None] = dict.fromkeys(message_ids)

    def pending(self) -> list[str]:
        """The messages not yet as far as ``wait_for``."""
        return [message_id for message_id, state in self.states.items() if not reached(state, self.wait_for)]

    def absorb(self, results: Sequence[Delivery | BaseException]) -> tuple[dict[str, Any] | None, bool]:
        """Take one poll of :meth:`pending` (results in that order); return the event that ends the wait, if
        any, and whether to back off before the next poll (a 429, a 5xx, no answer)."""
        back_off = False
        for message_id, result in zip(self.pending(), results, strict=True):
            if isinstance(result, BaseException):
                if not _transient(result):
                    ended = "unavailable" if isinstance(result, DeliveryReportUnavailableError) else "error"
                    return self._end(ended, result), False
                back_off = True
            elif result.state == FAILED:
                self.states[message_id] = FAILED
                details = {name: getattr(result, name) for name in FAILURE_DETAILS}
                return self._end("failed", DeliveryFailedError(**details), **details), False
            elif result.state in _RANK and not reached(self.states[message_id], result.state):
                self.states[message_id] = result.state
        # Every message there: nothing transient is left pending, so no back-off either.
        return (None if self.pending() else {"status": "success", "states": dict(self.states)}), back_off

    def short_of_goal(self) -> str:
        """The messages still short of ``wait_for``, with their last state, for a timeout's message."""
        shown = ", ".join(f"{message_id} ({self.states[message_id] or 'no ack yet'})" for message_id in self.pending())
        return f"still short of {self.wait_for!r}: {shown}"

    def _end(self, status: str, error: BaseException, **details: Any) -> dict[str, Any]:
        """The event of a wait that ended short of success: what ended it, and how far each message got."""
        return {"status": status, "error": str(error), **details, "states": dict(self.states)}


def _transient(error: BaseException) -> bool:
    """A failure of one poll that waiting may cure: a rate limit, an unavailable gateway, a 5xx, a lost answer;
    not a bug, nor an error of another kind."""
    if isinstance(error, NotSentError):
        return error.transient
    return isinstance(error, GatewayError) and (error.status_code is None or error.status_code >= 500)
