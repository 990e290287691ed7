"""Scripted delivery acks for 1msg's ``hookInfo`` ("Check ACKs"): what the stand-in reports of each card."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_provider_chatapi.testing._records import QueuedMessage

__all__ = ["DEFAULT_ACKS", "Ack", "AckScripts"]


@dataclass(frozen=True)
class Ack:
    """One WhatsApp status event of a card, ``after`` seconds after the stand-in queued it and from the
    ``hookInfo`` answer that follows ``after_polls`` earlier ones about that card (a delay that does not
    depend on when a test's sensor starts).

    ``status`` is ``sent``, ``delivered``, ``read``, ``played``, ``failed``, ... A failure carries 1msg's text
    (``error``) or Meta's ``errors[]``, or both. An ``errors[]`` entry has the shape of Meta's current status
    webhook, which clients such as pywa parse (its ``WhatsAppError.from_dict`` needs ``code`` and
    ``message``): ``code``, ``title``, ``message`` (Meta repeats the title there) and ``error_data``
    ``{"details": details}`` (the title again unless ``details`` is given).
    """

    status: str
    after: float = 0.0
    after_polls: int = 0
    error: str | None = None
    code: int | None = None
    title: str | None = None
    details: str | None = None

    def event(self, message: QueuedMessage, queued_at: float) -> dict[str, Any]:
        """The event as ``hookInfo`` lists it, in Meta's status shape."""
        event: dict[str, Any] = {
            "id": message.id,
            "type": "message",
            "status": self.status,
            "timestamp": str(int(queued_at + self.after)),
            "recipient_id": message.chat_id.partition("@")[0],
        }
        if self.error is not None:
            event["error"] = self.error
        if self.code is not None or self.title is not None or self.details is not None:
            title = self.title or ""
            error_data = {"details": self.details or title}
            event["errors"] = [{"code": self.code, "title": title, "message": title, "error_data": error_data}]
        return event


DEFAULT_ACKS = (Ack("sent"), Ack("delivered"))
"""What a card not scripted otherwise reports: sent and delivered at once."""


class AckScripts:
    """Each chat's scripted acks, and when each card was queued (wall clock, as ``timestamp`` is)."""

    def __init__(self, scripts: Mapping[str, Sequence[Ack]] | None, default: Sequence[Ack]) -> None:
        self._scripts = {chat: tuple(acks) for chat, acks in (scripts or {}).items()}
        self._default = tuple(default)
        self._queued_at: dict[str, float] = {}
        self._polls: dict[str, int] = {}
        self.journal: Callable[[str, Any], None] = _unjournaled
        """Told each change (``--state``: :mod:`airflow_provider_chatapi.testing._state` writes it down)."""

    def queued(self, message_id: str) -> None:
        at = self._queued_at[message_id] = time.time()
        self.journal("queued_at", (message_id, at))

    def answer(self, message: QueuedMessage | None) -> dict[str, Any]:
        """``hookInfo``'s answer: the events of the card due by now, in the script's order; none for an id it
        never gave."""
        if message is None or message.id not in self._queued_at:
            return {"hooks": []}
        queued_at = self._queued_at[message.id]
        elapsed = time.time() - queued_at
        polls = self._polls[message.id] = self._polls.get(message.id, 0) + 1
        self.journal("polls", (message.id, polls))
        acks = self._scripts.get(message.chat_id, self._default)
        due = [ack for ack in acks if ack.after <= elapsed and ack.after_polls < polls]
        return {"hooks": [ack.event(message, queued_at) for ack in due]}


def _unjournaled(event: str, value: Any) -> None:
    """No state file: changes are kept in memory only."""
