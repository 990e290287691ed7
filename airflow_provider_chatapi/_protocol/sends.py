"""A send as the DAG author meant it, before any dialect turns it into a request, and what it queued.

:func:`build_send_contact` validates everything that does not depend on the gateway and returns a
:class:`ContactSend`: the recipient chat, the cards and the message to reply to. The hook hands it to the
connection's dialect, which builds the request (and refuses what that dialect cannot carry, still before
anything is sent), and the dialect reads the answer into a :class:`SendResult`. Ledgers and errors speak
of sends, so they never see which dialect runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow_provider_chatapi._protocol import whatsapp
from airflow_provider_chatapi._protocol.cards import MAX_CONTACTS, Card, card_for_number, normalize_contacts
from airflow_provider_chatapi.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "MAX_IN_FLIGHT",
    "MAX_RETRIES",
    "MAX_TIMEOUT",
    "MIN_PER_SECOND",
    "ContactSend",
    "SendResult",
    "build_send_contact",
    "build_send_to_many",
    "checked_flag",
    "checked_max_in_flight",
    "checked_max_per_second",
    "checked_max_retries",
    "checked_span",
    "checked_timeout",
]

DEFAULT_MAX_IN_FLIGHT = 10  # requests one batch keeps in flight at once by default
MAX_IN_FLIGHT = 1000  # most in flight at once: each request holds a socket, and a worker often has 1,024 in all
# The slowest pace a batch may be given (one request an hour): the pacer sleeps up to 1 / max_per_second
# before a start, and a sleep of 1e300 s overflows the event loop's clock.
MIN_PER_SECOND = 1 / 3600
# Most seconds one request may wait for the gateway: more is a mistake (milliseconds given as seconds, say),
# and from about 1e9 s on the sockets' timers overflow.
MAX_TIMEOUT = 3600.0
MAX_RETRIES = 100  # HTTP retries of one call: with waits of up to 10 s between them, more would hold a task for hours
_MIN_SECONDS = 0.001  # the least a connection's extra timeout may be, too


@dataclass(frozen=True)
class ContactSend:
    """One message of contact cards to one chat, validated: the arguments of a send, checked once.

    ``phone`` is set when the recipient was given as a phone number (``chat_id`` is then its private
    chat). The contacts are either full ``cards`` or ``contact_ids`` (WhatsApp numbers, digits with the
    country code), as given: a dialect that sends numbers sends those as they are.
    """

    chat_id: str
    cards: tuple[Card, ...] = ()
    contact_ids: tuple[str, ...] = ()
    phone: str | None = None
    quoted_message_id: str | None = None

    @property
    def contacts(self) -> tuple[Card, ...]:
        """Every contact as a full card; a contact id's is named by its number."""
        return self.cards or tuple(card_for_number(number) for number in self.contact_ids)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The gateway's answer to an accepted send: the message is in the instance's outbound queue.

    ``sent`` true means *queued*, not delivered (a refusal raises).

    ``job_id``, 1msg only: set when 1msg took the send as a queued job (``sent: false`` with a ``jobId``).
    Such a send has no message id yet, so ``id`` holds the job id: the one handle there is. It is queued,
    and never to be sent again.

    ``earlier_try``: set when no request was made: an earlier try of the task queued this card (from its
    record, or found at the gateway after a lost answer); ``message`` then says so.
    """

    id: str
    sent: bool
    message: str
    queue_number: int | None
    job_id: str | None = None
    earlier_try: bool = False


def build_send_contact(
    contact_ids: Any = None,
    *,
    contacts: Any = None,
    phone: Any = None,
    chat_id: Any = None,
    quoted_message_id: Any = None,
    region: whatsapp.RegionSource = None,
) -> ContactSend:
    """Validate and normalise one send: exactly one of ``contact_ids`` / ``contacts``, of ``phone`` / ``chat_id``.

    ``region`` reads the numbers written the national way (see :func:`~.whatsapp.read_number`).
    """
    _one_of("phone", phone, "chat_id", chat_id)
    cards, numbers, quoted = _contents(contact_ids, contacts, quoted_message_id, region)
    if phone is not None:
        phone = whatsapp.normalize_phone(phone, region=region)
    chat = whatsapp.normalize_chat_id(chat_id) if phone is None else f"{phone}{whatsapp.PRIVATE_SUFFIX}"
    return ContactSend(chat, cards=cards, contact_ids=numbers, phone=phone, quoted_message_id=quoted)


def build_send_to_many(
    contact_ids: Any,
    recipients: Any,
    *,
    contacts: Any = None,
    quoted_message_id: Any = None,
    region: whatsapp.RegionSource = None,
) -> list[ContactSend]:
    """One send per recipient, in order; every argument is validated first."""
    cards, numbers, quoted = _contents(contact_ids, contacts, quoted_message_id, region)
    return [
        ContactSend(chat, cards=cards, contact_ids=numbers, phone=phone, quoted_message_id=quoted)
        for chat, phone in whatsapp.normalize_recipients(recipients, region=region)
    ]


def checked_max_in_flight(max_in_flight: Any) -> int:
    """A batch's bound on requests in flight at once: a whole number from 1 to :data:`MAX_IN_FLIGHT`."""
    return _whole(max_in_flight, "max_in_flight", 1, MAX_IN_FLIGHT)


def checked_max_per_second(max_per_second: Any) -> float | None:
    """A batch's bound on requests in any one second at the gateway, from :data:`MIN_PER_SECOND` up; None
    for no bound."""
    if max_per_second is None:
        return None
    problem = "must be a finite number of requests a second, at least 1/3600"
    return _number(max_per_second, "max_per_second", MIN_PER_SECOND, sys.float_info.max, problem)


def checked_timeout(timeout: Any) -> float | None:
    """Seconds to wait for the gateway, up to :data:`MAX_TIMEOUT`; None to take the connection's."""
    problem = f"must be a number of seconds from {_MIN_SECONDS} to {MAX_TIMEOUT:,.0f}"
    return None if timeout is None else _number(timeout, "timeout", _MIN_SECONDS, MAX_TIMEOUT, problem)


def checked_max_retries(max_retries: Any) -> int | None:
    """HTTP retries of a call: a whole number from 0 to :data:`MAX_RETRIES`; None to take the connection's."""
    return None if max_retries is None else _whole(max_retries, "max_retries", 0, MAX_RETRIES)


def checked_span(span: Any, field: str, *, at_most: float) -> float:
    """A span of time as Airflow's sensors take one: seconds, or a ``timedelta``; positive, at most ``at_most``."""
    problem = f"must be a number of seconds from {_MIN_SECONDS} to {at_most:,.0f}, or a timedelta"
    seconds = span.total_seconds() if isinstance(span, timedelta) else span
    return _number(seconds, field, _MIN_SECONDS, at_most, problem, given=span)


def checked_flag(value: Any, field: str) -> bool:
    """A yes-or-no argument: a bool, or the text ``"true"`` / ``"false"`` a template renders (any case)."""
    flag = {"true": True, "false": False}.get(value.strip().lower()) if isinstance(value, str) else value
    if not isinstance(flag, bool):
        raise InvalidInputError(field, value, 'must be True or False (or the text "true" / "false")')
    return flag


def _whole(value: Any, field: str, least: int, most: int) -> int:
    """``value`` when it is an int from ``least`` to ``most``; a bool is no number, though Python counts it an int."""
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise InvalidInputError(field, value, f"must be a whole number from {least} to {most:,}")
    return value


def _number(value: Any, field: str, least: float, most: float, problem: str, given: Any = None) -> float:
    """``value`` as a float when it is an int or float (not a bool) from ``least`` to ``most`` (so finite: nan
    compares false, and ``most`` is at most float's largest); else refused, naming ``given`` (a span as it was
    given) or ``value``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not least <= value <= most:
        raise InvalidInputError(field, value if given is None else given, problem)
    return float(value)


def _one_of(name: str, value: Any, other_name: str, other: Any, note: str = "") -> None:
    """Refuses two arguments of which exactly one must be given, when both or neither are."""
    if (value is None) == (other is None):
        given = "neither" if value is None else "both"
        problem = f"give exactly one of them{note}, got {given}"
        raise InvalidInputError(f"{name}/{other_name}", {name: value, other_name: other}, problem)


def _contents(
    contact_ids: Any, contacts: Any, quoted_message_id: Any, region: whatsapp.RegionSource
) -> tuple[tuple[Card, ...], tuple[str, ...], str | None]:
    """What a send carries to any chat: the cards given in full or the numbers given as contact ids (the
    other empty), and the message it quotes."""
    _one_of("contact_ids", contact_ids, "contacts", contacts, " (ids, or full contact cards)")
    cards = () if contacts is None else normalize_contacts(contacts, region=region)
    ids = () if contact_ids is None else whatsapp.normalize_contact_ids(contact_ids, region=region)
    numbers = tuple([contact.removesuffix(whatsapp.PRIVATE_SUFFIX) for contact in ids])  # a list: no generator frame
    field, value = ("contacts", contacts) if cards else ("contact_ids", contact_ids)
    if len(cards or numbers) > MAX_CONTACTS:
        raise InvalidInputError(
            field, value, f"holds {len(cards or numbers)} contacts; WhatsApp takes {MAX_CONTACTS} in one message"
        )
    if quoted_message_id is not None:
        quoted_message_id = whatsapp.checked_message_id(quoted_message_id, field="quoted_message_id")
    return cards, numbers, quoted_message_id
