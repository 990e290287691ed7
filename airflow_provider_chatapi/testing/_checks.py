"""The stand-in gateway's own checks of what it receives: a ``sendContact`` body, one function per
dialect, and a ``messages`` query.

They are written apart from :mod:`airflow_provider_chatapi._protocol` on purpose: a bug there cannot hide
itself by passing a check it wrote. Only the card contract's tables (which fields, which keys, the bounds)
are shared with the provider's cards, so that the two cannot disagree on what a card may hold. Each
returns a problem text naming the field, or what to act on.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi._protocol.cards import ENTRY_FIELDS, MAX_CONTACTS, MAX_TEXT, NAME_PARTS, ORG_FIELDS

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["check_classic_send", "check_history_query", "check_onemsg_send", "history_flag"]

WHATSAPP_NUMBER = re.compile(r"[1-9][0-9]{6,14}")
_CONTACT_ID = re.compile(r"[1-9][0-9]{6,14}@c\.us")
_CHAT_ID = re.compile(r"[1-9][0-9]{6,14}@c\.us|(?:[1-9][0-9]{6,14}-[0-9]{9,11}|[1-9][0-9]{9,24})@g\.us")
_LID_CHAT = re.compile(r"[^\s@]+@lid")
_CARD_KEYS = {"name", "org", "birthday", *ENTRY_FIELDS}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}
"""A ``messages`` flag's words, read case-insensitively: the WABA SDK sends Python's ``True`` (it turns a bool
into text with ``str`` before it lowers bools), other clients ``true``."""


def check_classic_send(body: Any) -> tuple[str | None, str, tuple[str, ...]]:
    """The gateway's checks of a sendContact body: a problem text, or the chat and contacts to send."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object", "", ()
    nulls = sorted(name for name, value in body.items() if value is None)
    if nulls:
        return f"Fields must not be null: {', '.join(nulls)}", "", ()
    if ("phone" in body) == ("chatId" in body):
        return "Provide exactly one of phone or chatId", "", ()
    if "phone" in body:
        phone = _phone_number(body["phone"])
        if phone is None:
            return f"Wrong phone format: {body['phone']!r}. Use digits with the country code", "", ()
        chat_id = f"{phone}@c.us"
    else:
        chat_id = body["chatId"]
        if not isinstance(chat_id, str) or not _CHAT_ID.fullmatch(chat_id):
            return "Wrong chatId format. Please use 17633123456@c.us or 17680561234-1479621234@g.us", "", ()
    contacts = body.get("contactId")
    if isinstance(contacts, str):
        contacts = [contacts]
    if not isinstance(contacts, list) or not contacts:
        return "contactId is required: a contact id or a list of them", "", ()
    for contact in contacts:
        if not isinstance(contact, str) or not _CONTACT_ID.fullmatch(contact):
            return f"Wrong contactId format: {contact!r}. Use 17633123456@c.us", "", ()
    quoted = body.get("quotedMsgId")
    if quoted is not None and (not isinstance(quoted, str) or not quoted):
        return "quotedMsgId must be a message id", "", ()
    return None, chat_id, tuple(contacts)


def check_onemsg_send(body: Any) -> tuple[str | None, str, tuple[dict[str, Any], ...]]:
    """1msg's checks of a sendContact body: a problem naming the field, or the chat and cards to send."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object", "", ()
    nulls = sorted(name for name, value in body.items() if value is None)
    if nulls:
        return f"Fields must not be null: {', '.join(nulls)}", "", ()
    if "contactId" in body:
        return "contactId is not a field of 1msg's sendContact; send contacts", "", ()
    if ("phone" in body) == ("chatId" in body):
        return "Provide exactly one of phone or chatId", "", ()
    if "phone" in body:
        phone = _phone_number(body["phone"])
        if phone is None:
            return f"phone: wrong format {body['phone']!r}; use digits with the country code", "", ()
        chat_id = f"{phone}@c.us"
    else:
        chat_id = body["chatId"]
        if not isinstance(chat_id, str) or not (_CHAT_ID.fullmatch(chat_id) or _LID_CHAT.fullmatch(chat_id)):
            return f"chatId: wrong format {chat_id!r}", "", ()
    cards = body.get("contacts")
    if not isinstance(cards, list) or not cards:
        return "contacts is required: a non-empty array of contact objects", "", ()
    if len(cards) > MAX_CONTACTS:
        return f"contacts: at most {MAX_CONTACTS} contacts in one message, got {len(cards)}", "", ()
    for index, card in enumerate(cards):
        problem = _card_problem(card, f"contacts[{index}]")
        if problem:
            return problem, "", ()
    quoted = body.get("quotedMsgId")
    if quoted is not None and (not isinstance(quoted, str) or not quoted):
        return "quotedMsgId must be a message id", "", ()
    return None, chat_id, tuple(cards)


def check_history_query(query: Mapping[str, str]) -> str | None:
    """The gateway's checks of a ``messages`` query: a problem naming the parameter, or None.

    A malformed number or flag is the client's mistake, to be answered 400, not an error inside the
    stand-in. ``limit=0`` is allowed: it means every message (2.39.0: "With value 0 returns all messages").
    """
    for name in ("min_time", "max_time", "limit", "lastMessageNumber"):
        value = query.get(name)
        # isdigit alone passes digits such as "²" that int() refuses; a sign is refused with the rest
        if value and not (value.isascii() and value.isdigit()):
            return f"{name} must be a whole number, got {value!r}"
    last = query.get("last")
    if last is not None and last.lower() not in _FLAGS:
        return f"last must be true or false, got {last!r}"
    return None


def history_flag(value: str | None) -> bool:
    """A ``messages`` flag (``last``) as :func:`check_history_query` let it through: absent is false."""
    return value is not None and _FLAGS[value.lower()]


def _phone_number(value: Any) -> str | None:
    """A ``phone`` field's digits: a string, or a whole number (the 1msg WABA SDK types it an integer); None
    when it is not a WhatsApp number with its country code. A bool is no number, though Python calls it an int.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    digits = str(value)
    return digits if WHATSAPP_NUMBER.fullmatch(digits) else None


def _card_problem(card: Any, field: str) -> str | None:
    if not isinstance(card, dict):
        return f"{field} must be an object"
    for key in card:
        if key not in _CARD_KEYS:
            return f"{field}.{key} is not a contact field"
    name = card.get("name")
    if not isinstance(name, dict):
        return f"{field}.name is required: an object with formatted_name"
    for key, value in name.items():
        if key != "formatted_name" and key not in NAME_PARTS:
            return f"{field}.name.{key} is not a name field"
        problem = _text_problem(value, f"{field}.name.{key}")
        if problem:
            return problem
    if "formatted_name" not in name:
        return f"{field}.name.formatted_name is required"
    if not set(NAME_PARTS) & set(name):
        return f"{field}.name needs one of {', '.join(sorted(NAME_PARTS))} besides formatted_name"
    for key, allowed in ENTRY_FIELDS.items():
        problem = _entries_problem(card.get(key, []), allowed, f"{field}.{key}")
        if problem:
            return problem
    org = card.get("org", {})
    if not isinstance(org, dict) or set(org) - set(ORG_FIELDS):
        return f"{field}.org must be an object of {', '.join(ORG_FIELDS)}"
    for key, value in org.items():
        problem = _text_problem(value, f"{field}.org.{key}")
        if problem:
            return problem
    birthday = card.get("birthday")
    if birthday is not None:
        try:
            valid = isinstance(birthday, str) and dt.date.fromisoformat(birthday).isoformat() == birthday
        except ValueError:
            valid = False
        if not valid:
            return f"{field}.birthday must be a date written YYYY-MM-DD"
    return None


def _entries_problem(entries: Any, allowed: tuple[str, ...], field: str) -> str | None:
    """A list field's entries: objects of the allowed keys, every value free text (Meta gives no format for
    a type, an e-mail, a url or a displayed phone), a ``wa_id`` digits."""
    if not isinstance(entries, list):
        return f"{field} must be an array"
    for index, entry in enumerate(entries):
        where = f"{field}[{index}]"
        if not isinstance(entry, dict) or not entry or set(entry) - set(allowed):
            return f"{where} must be an object of {', '.join(allowed)}"
        for key, value in entry.items():
            problem = _text_problem(value, f"{where}.{key}")
            if problem:
                return problem
        if field.endswith(".phones"):
            if not {"phone", "wa_id"} & set(entry):
                return f"{where} needs phone or wa_id"
            if "wa_id" in entry and not WHATSAPP_NUMBER.fullmatch(entry["wa_id"]):
                return f"{where}.wa_id must be a WhatsApp number (digits)"
        if field.endswith(".emails") and "email" not in entry:
            return f"{where}.email is required"
        if field.endswith(".urls") and "url" not in entry:
            return f"{where}.url is required"
    return None


def _text_problem(value: Any, field: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{field} must be a non-empty string"
    if len(value) > MAX_TEXT or _CONTROL.search(value):
        return f"{field} must be at most {MAX_TEXT} characters with no control character"
    return None
