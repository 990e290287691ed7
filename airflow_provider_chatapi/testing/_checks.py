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
    from collections.abc import Iterable, Mapping

__all__ = ["check_classic_send", "check_history_query", "check_onemsg_send", "history_flag"]

WHATSAPP_NUMBER = re.compile(r"[1-9][0-9]{6,14}")
_CONTACT_ID = re.compile(r"[1-9][0-9]{6,14}@c\.us")
_CHAT_ID = re.compile(r"[1-9][0-9]{6,14}@c\.us|(?:[1-9][0-9]{6,14}-[0-9]{9,11}|[1-9][0-9]{9,24})@g\.us")
_LID_CHAT = re.compile(r"[^\s@]+@lid")
_WRONG_CHAT_ID = "Wrong chatId format. Please use 17633123456@c.us or 17680561234-1479621234@g.us"
_CARD_KEYS = {"name", "org", "birthday", *ENTRY_FIELDS}
_REQUIRED_KEY = {"emails": "email", "urls": "url"}  # an entry's key without which the entry means nothing
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A ``messages`` flag's words, read case-insensitively: the WABA SDK sends Python's ``True`` (it turns a bool
# into text with ``str`` before it lowers bools), other clients ``true``.
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


class _Refused(ValueError):
    """What the gateway refuses, in its words: raised by the first check that fails, however deep."""


def _check(ok: object, problem: str) -> None:
    if not ok:
        raise _Refused(problem)


def check_classic_send(body: Any) -> tuple[str | None, str, tuple[str, ...]]:
    """The gateway's checks of a sendContact body: a problem text, or the chat and contacts to send."""
    return _check_send(body, onemsg=False)


def check_onemsg_send(body: Any) -> tuple[str | None, str, tuple[dict[str, Any], ...]]:
    """1msg's checks of a sendContact body: a problem naming the field, or the chat and cards to send."""
    return _check_send(body, onemsg=True)


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


def _check_send(body: Any, onemsg: bool) -> tuple[str | None, str, tuple[Any, ...]]:
    try:
        chat_id = _chat_id(body, onemsg)
        if onemsg:
            items = body.get("contacts")
            _check(isinstance(items, list) and items, "contacts is required: a non-empty array of contact objects")
            count = len(items)
            _check(count <= MAX_CONTACTS, f"contacts: at most {MAX_CONTACTS} contacts in one message, got {count}")
            for index, card in enumerate(items):
                _check_card(card, f"contacts[{index}]")
        else:
            items = [body["contactId"]] if isinstance(body.get("contactId"), str) else body.get("contactId")
            _check(isinstance(items, list) and items, "contactId is required: a contact id or a list of them")
            for contact in items:
                ok = isinstance(contact, str) and _CONTACT_ID.fullmatch(contact)
                _check(ok, f"Wrong contactId format: {contact!r}. Use 17633123456@c.us")
        quoted = body.get("quotedMsgId")
        _check(quoted is None or (isinstance(quoted, str) and quoted), "quotedMsgId must be a message id")
    except _Refused as problem:
        return str(problem), "", ()
    return None, chat_id, tuple(items)


def _chat_id(body: Any, onemsg: bool) -> str:
    """The chat a send goes to, from its ``phone`` or its ``chatId``, each dialect refusing in its words."""
    _check(isinstance(body, dict), "Request body must be a JSON object")
    nulls = sorted(name for name, value in body.items() if value is None)
    _check(not nulls, f"Fields must not be null: {', '.join(nulls)}")
    _check(not onemsg or "contactId" not in body, "contactId is not a field of 1msg's sendContact; send contacts")
    _check(("phone" in body) != ("chatId" in body), "Provide exactly one of phone or chatId")
    if "phone" in body:
        # A string, or a whole number (the 1msg WABA SDK types it an integer): of JSON's values, only those
        # print as digits alone (a bool prints True, a float its point).
        phone = body["phone"]
        wrong = f"phone: wrong format {phone!r}; use digits" if onemsg else f"Wrong phone format: {phone!r}. Use digits"
        _check(WHATSAPP_NUMBER.fullmatch(str(phone)), f"{wrong} with the country code")
        return f"{phone}@c.us"
    chat_id = body["chatId"]
    ok = isinstance(chat_id, str) and (_CHAT_ID.fullmatch(chat_id) or (onemsg and _LID_CHAT.fullmatch(chat_id)))
    _check(ok, f"chatId: wrong format {chat_id!r}" if onemsg else _WRONG_CHAT_ID)
    return chat_id


def _check_card(card: Any, field: str) -> None:
    _check(isinstance(card, dict), f"{field} must be an object")
    for key in card:
        _check(key in _CARD_KEYS, f"{field}.{key} is not a contact field")
    name = card.get("name")
    _check(isinstance(name, dict), f"{field}.name is required: an object with formatted_name")
    for key, value in name.items():
        _check(key == "formatted_name" or key in NAME_PARTS, f"{field}.name.{key} is not a name field")
        _check_text(value, f"{field}.name.{key}")
    _check("formatted_name" in name, f"{field}.name.formatted_name is required")
    parts = ", ".join(sorted(NAME_PARTS))
    _check(set(NAME_PARTS) & set(name), f"{field}.name needs one of {parts} besides formatted_name")
    # A list field's entries: objects of the allowed keys, every value free text (Meta gives no format for a
    # type, an e-mail, a url or a displayed phone), a ``wa_id`` digits.
    for key, allowed in ENTRY_FIELDS.items():
        entries = card.get(key, [])
        _check(isinstance(entries, list), f"{field}.{key} must be an array")
        for index, entry in enumerate(entries):
            where = f"{field}.{key}[{index}]"
            _check_object(entry, where, allowed, empty=False)
            if key == "phones":
                _check({"phone", "wa_id"} & set(entry), f"{where} needs phone or wa_id")
                digits = "wa_id" not in entry or WHATSAPP_NUMBER.fullmatch(entry["wa_id"])
                _check(digits, f"{where}.wa_id must be a WhatsApp number (digits)")
            required = _REQUIRED_KEY.get(key)
            _check(required is None or required in entry, f"{where}.{required} is required")
    _check_object(card.get("org", {}), f"{field}.org", ORG_FIELDS, empty=True)
    birthday = card.get("birthday")
    try:
        ok = birthday is None or (isinstance(birthday, str) and dt.date.fromisoformat(birthday).isoformat() == birthday)
    except ValueError:
        ok = False
    _check(ok, f"{field}.birthday must be a date written YYYY-MM-DD")


def _check_object(value: Any, field: str, allowed: Iterable[str], empty: bool) -> None:
    """An object of some of the ``allowed`` keys (at least one unless ``empty``), every value free text."""
    ok = isinstance(value, dict) and (value or empty) and not set(value) - set(allowed)
    _check(ok, f"{field} must be an object of {', '.join(allowed)}")
    for key, text in value.items():
        _check_text(text, f"{field}.{key}")


def _check_text(value: Any, field: str) -> None:
    _check(isinstance(value, str) and value.strip(), f"{field} must be a non-empty string")
    ok = len(value) <= MAX_TEXT and not _CONTROL.search(value)
    _check(ok, f"{field} must be at most {MAX_TEXT} characters with no control character")
