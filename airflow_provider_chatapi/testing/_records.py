"""What the stand-in keeps: each request as received, and each contact card it accepted."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "QueuedMessage",
    "RecordedRequest",
    "as_delivered",
    "message_as_json",
    "message_from_json",
    "request_as_json",
    "request_from_json",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it (the token included, as sent)."""

    method: str
    path: str
    endpoint: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any
    client_port: int
    """The client's TCP port: the same port on two requests means the connection was reused."""
    received_at: float = 0.0
    """When it arrived: ``time.monotonic()`` in the stand-in's process, once its headers were read. A
    monotonic clock, not the wall clock a test may set (:attr:`StandInGateway.clock_offset`, the package's
    ``time``), so that a test can check a client's pacing: compare two requests' values. (On Linux the
    monotonic clock is the whole machine's, so another process's ``time.monotonic()`` compares too.) 0.0
    in a state file written before the stand-in recorded it."""


@dataclass(frozen=True)
class QueuedMessage:
    """A contact card the stand-in accepted."""

    id: str
    chat_id: str
    contact_ids: tuple[str, ...]
    """Each contact's WhatsApp id; on 1msg, each card's first ``wa_id`` (a card without one adds none)."""
    time: int
    message_number: int
    quoted_message_id: str | None = None
    delivered: bool = False
    contacts: tuple[dict[str, Any], ...] = ()
    """1msg: the contact cards exactly as received."""

    @property
    def type(self) -> str:
        if self.contacts:
            return "contacts"
        return "vcard" if len(self.contact_ids) == 1 else "multi_vcard"

    @property
    def vcards(self) -> str:
        """The message's text as the gateway's history stores a contact card: vCards, a ``waid=`` per number."""
        if not self.contacts:
            return "\n".join(_vcard(f"+{contact[:-5]}", [contact[:-5]]) for contact in self.contact_ids)
        return "\n".join(
            _vcard(
                card["name"]["formatted_name"], [phone["wa_id"] for phone in card.get("phones", []) if "wa_id" in phone]
            )
            for card in self.contacts
        )


def as_delivered(message: QueuedMessage) -> QueuedMessage:
    """The message, delivered."""
    return dataclasses.replace(message, delivered=True)


def request_as_json(request: RecordedRequest) -> dict[str, Any]:
    """The request as JSON values (the state file, the control API); its body as text, any bytes kept."""
    return {
        "method": request.method,
        "path": request.path,
        "endpoint": request.endpoint,
        "query": dict(request.query),
        "headers": dict(request.headers),
        "body": request.body.decode("utf-8", "surrogateescape"),
        "json": request.json,
        "client_port": request.client_port,
        "received_at": request.received_at,
    }


def request_from_json(value: Mapping[str, Any]) -> RecordedRequest:
    return RecordedRequest(**{**value, "body": value["body"].encode("utf-8", "surrogateescape")})


def message_as_json(message: QueuedMessage) -> dict[str, Any]:
    """The message as JSON values: every field, the cards as received."""
    return {
        "id": message.id,
        "chat_id": message.chat_id,
        "contact_ids": list(message.contact_ids),
        "time": message.time,
        "message_number": message.message_number,
        "quoted_message_id": message.quoted_message_id,
        "delivered": message.delivered,
        "contacts": list(message.contacts),
    }


def message_from_json(value: Mapping[str, Any]) -> QueuedMessage:
    fields = {**value, "contact_ids": tuple(value["contact_ids"]), "contacts": tuple(value["contacts"])}
    return QueuedMessage(**fields)


def _vcard(name: str, numbers: list[str]) -> str:
    phones = "".join(f"TEL;type=CELL;waid={number}:+{number}\n" for number in numbers)
    return f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\n{phones}END:VCARD"
