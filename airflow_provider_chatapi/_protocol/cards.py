"""Contact cards: what a DAG author writes, turned into WhatsApp's contact object.

A card is the WhatsApp Business contact object as a plain, JSON-ready dict: ``name`` (``formatted_name``
and at least one part), ``phones``, ``emails``, ``urls``, ``org``, ``addresses``, ``birthday``. Authors and
upstream tasks may write it short::

    {"name": "Ann Lee", "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"}

or in full; either way :func:`normalize_contacts` returns full objects, or raises an
:class:`InvalidInputError` naming the card and the field (``contacts[1].phones[0].wa_id``).

Meta's contract (contacts messages, revision of 2025-11-03) is followed as written:

- ``wa_id`` only where the writer gave one: with it, WhatsApp shows **Message** beside the number, so it
  is never made up for a number no one said is on WhatsApp. A bare contact id is a WhatsApp id by
  definition, so its card (:func:`card_for_number`) has one.
- A phone without ``wa_id`` must be a real number: read with the same rules as ``contact_ids`` (an
  extension and letters allowed), shown as written when written with ``+``, else in international form
  (``8 (495) 123-45-67`` in ``RU`` shows ``+7 495 123-45-67``), so that it dials from any country.
  Beside a ``wa_id``, ``phone`` is free text, shown as written; a ``wa_id`` alone is shown in
  international form.
- Every ``type`` is free text, sent as written (``CELL``, ``Landline``, ``Work (old)``); none is invented.
- A url without a scheme (``www.example.com``) is taken as ``https://``; an e-mail is free text.
- Every text is at most :data:`MAX_TEXT` characters with no control character; a message holds at most
  :data:`MAX_CONTACTS` cards.

:data:`ENTRY_FIELDS` and the other tables here are the stand-in gateway's too, so the two cannot disagree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_chatapi._protocol import whatsapp
from airflow_provider_chatapi.exceptions import InvalidInputError

__all__ = [
    "ENTRY_FIELDS",
    "MAX_CONTACTS",
    "MAX_TEXT",
    "NAME_PARTS",
    "ORG_FIELDS",
    "Card",
    "card_for_number",
    "card_numbers",
    "card_whatsapp_ids",
    "normalize_contacts",
]

Card = dict[str, Any]  # a contact card: WhatsApp's contact object, normalised

NAME_PARTS = ("prefix", "first_name", "middle_name", "last_name", "suffix")  # WhatsApp wants one besides formatted_name
ORG_FIELDS = ("company", "department", "title")
# A card's list fields, and the keys an entry of each may have (every one free text but wa_id).
ENTRY_FIELDS = {
    "phones": ("phone", "type", "wa_id"),
    "emails": ("email", "type"),
    "urls": ("url", "type"),
    "addresses": ("street", "city", "state", "zip", "country", "country_code", "type"),
}
MAX_TEXT = 1024  # most characters in one text field of a card (a name, a company, a street, ...)
MAX_CONTACTS = 257  # most contacts one message may carry (Meta's contacts message)
_FIELDS = ("name", "phones", "emails", "urls", "org", "addresses", "birthday")  # in the order they are read
_SHORTHANDS = {"phones": "phone", "emails": "email", "urls": "url"}  # a list field given as its one entry
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_SCHEMELESS_URL = re.compile(r"[^\s/?#:@]+\.[^\s/?#:@]+(?:[/?#][^\s]*)?")  # www.example.com/path
_BIRTHDAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CARD_EXAMPLE = "{'name': 'Ann Lee', 'phone': '+7 900 111-11-11'}"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHOWN_KEY = 40  # characters of an unknown key put in a field name


def normalize_contacts(
    value: Any, *, field: str = "contacts", region: whatsapp.RegionSource = None
) -> tuple[Card, ...]:
    """Return the cards to send, in the order given, each once.

    Takes a list of mappings, one mapping, an upstream task's output, or a template's rendering of them
    (JSON or a Python literal). ``region`` reads phone numbers written the national way.
    """
    if isinstance(value, str) and value.strip():  # a template's rendering
        problem = f"text must be a JSON or Python list of cards, such as [{_CARD_EXAMPLE}]"
        value = whatsapp.parse_rendered(value.strip(), field, value, (Mapping, list, tuple), problem)
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise InvalidInputError(field, value, f"expected a list of contact cards, got {type(value).__name__}")
    items = [value] if isinstance(value, Mapping) else [] if isinstance(value, str) else list(value)
    if not items:
        raise InvalidInputError(field, value, "is empty; give at least one contact card")
    cards = [_card(item, f"{field}[{index}]", region) for index, item in enumerate(items)]
    return tuple({json.dumps(card, sort_keys=True): card for card in cards}.values())  # each once, in order


def card_for_number(number: str) -> Card:
    """The card for a bare WhatsApp number: named by the number in international format."""
    shown = whatsapp.international_format(number)
    return {"name": {"formatted_name": shown, "first_name": shown}, "phones": [{"phone": shown, "wa_id": number}]}


def card_whatsapp_ids(card: Mapping[str, Any]) -> list[str]:
    """The WhatsApp ids the writer gave on a card, in order."""
    return [phone["wa_id"] for phone in card.get("phones", ()) if phone.get("wa_id")]


def card_numbers(card: Mapping[str, Any]) -> list[str]:
    """Every number on a card, as digits with the country code, in order: a phone's ``wa_id``, else its
    number (which has no extension: what a gateway that sends numbers can send)."""
    numbers = []
    for phone in card.get("phones", ()):
        if phone.get("wa_id"):
            numbers.append(phone["wa_id"])
        else:  # shown in international form by _phone: read back without a region
            number = whatsapp.read_number(phone["phone"], None, field="phone", value=phone["phone"])
            if not number.extension:
                numbers.append(whatsapp.digits_of(number))
    return numbers


def _card(value: Any, field: str, region: whatsapp.RegionSource) -> Card:
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            field, value, f"a contact card is a mapping such as {_CARD_EXAMPLE}, not {type(value).__name__}"
        )
    _only(value, (*_FIELDS, *_SHORTHANDS.values()), field, "is not a card field; a card has")
    for key, short in _SHORTHANDS.items():
        if short in value and key in value:
            raise InvalidInputError(f"{field}.{short}", value[short], f"give {short} or {key}, not both")
    if value.get("name") is None:
        raise InvalidInputError(f"{field}.name", value.get("name"), "every card needs a name")
    card: Card = {}
    for key in _FIELDS:
        given_as = _SHORTHANDS[key] if _SHORTHANDS.get(key) in value else key
        given, given_field = value.get(given_as), f"{field}.{given_as}"
        if given is None:
            continue
        if key in ENTRY_FIELDS:
            card[key] = _entries(key, given, given_field, region)
        else:
            card[key] = {"name": _name, "org": _org, "birthday": _birthday}[key](given, given_field)
    return card


def _name(value: Any, field: str) -> dict[str, str]:
    if isinstance(value, str):
        return _name_from_text(_text(value, field))
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, value, "a name is a string ('Ann Lee') or a mapping with formatted_name")
    _only(value, ("formatted_name", *NAME_PARTS), field)
    parts = _texts(value, NAME_PARTS, field)
    formatted = _texts(value, ("formatted_name",), field).get("formatted_name", " ".join(parts.values()))  # or composed
    if not formatted:
        raise InvalidInputError(field, value, f"a name needs formatted_name or one of {', '.join(NAME_PARTS)}")
    # WhatsApp shows formatted_name, but refuses a name that has no part besides it.
    return {"formatted_name": formatted, **(parts or _name_from_text(formatted))}


def _name_from_text(text: str) -> dict[str, str]:
    first, _, last = " ".join(text.split()).partition(" ")
    return {"formatted_name": text, "first_name": first, **({"last_name": last} if last else {})}


def _org(value: Any, field: str) -> dict[str, str]:
    if isinstance(value, str):
        return {"company": _text(value, field)}
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, value, "an org is a company name or a mapping of company, department, title")
    return _some_of(value, ORG_FIELDS, field, f"an org needs one of {', '.join(ORG_FIELDS)}")


def _entries(kind: str, value: Any, field: str, region: whatsapp.RegionSource) -> list[dict[str, str]]:
    """The entries of the list field ``kind``, each named by its index; one entry may stand alone, named by
    the field (but an address only as a mapping)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise InvalidInputError(field, value, "is empty; leave it out instead")
        return [_entry(kind, item, f"{field}[{index}]", region) for index, item in enumerate(value)]
    scalar = isinstance(value, (str, int)) and not isinstance(value, bool)  # a phone, an e-mail or a url alone
    if isinstance(value, Mapping) or (scalar and kind != "addresses"):
        return [_entry(kind, value, field, region)]
    raise InvalidInputError(field, value, f"expected a list, got {type(value).__name__}")


def _entry(kind: str, value: Any, field: str, region: whatsapp.RegionSource) -> dict[str, str]:
    """One entry of the list field ``kind``: a mapping of its :data:`ENTRY_FIELDS`, or (but for an address)
    the phone, e-mail or url alone."""
    fields = ENTRY_FIELDS[kind]
    if kind == "addresses":
        if not isinstance(value, Mapping):
            raise InvalidInputError(field, value, f"an address is a mapping of {', '.join(fields)}")
        # A postal code read from a spreadsheet or JSON often arrives as a number; a bool is no postal code
        # (True is an int to Python), nor is an int of more than a dozen digits (str() refuses 5,000).
        zip_code = value.get("zip")
        if isinstance(zip_code, int) and not isinstance(zip_code, bool) and 0 <= zip_code < 10**12:
            value = {**value, "zip": str(zip_code)}
        return _some_of(value, fields, field, "an address needs at least one field")
    main = fields[0]  # the phone, the e-mail or the url: given alone, it is named by the entry's own field
    entry, main_field = (value, f"{field}.{main}") if isinstance(value, Mapping) else ({main: value}, field)
    _only(entry, fields, field)
    if kind == "phones":
        return _phone(entry, field, main_field, region)
    read = _url if kind == "urls" else _text
    return {main: read(entry.get(main), main_field), **_texts(entry, ("type",), field)}


def _phone(entry: Mapping[Any, Any], field: str, phone_field: str, region: whatsapp.RegionSource) -> dict[str, str]:
    """A phone entry, ``{phone, type, wa_id}`` as given (``phone_field`` names its phone)."""
    given = entry.get("phone")
    wa_id = None
    if entry.get("wa_id") is not None:  # phone beside it is free text, as written
        wa_id = whatsapp.normalize_phone(entry["wa_id"], field=f"{field}.wa_id", region=region)
        shown = whatsapp.international_format(wa_id) if given is None else _text(given, phone_field)
    elif isinstance(given, str):
        # A real number: shown as written when that is with + (it dials from anywhere), else in international
        # form (8 (495) 123-45-67 dials only from Russia).
        text = _text(given, phone_field)
        number = whatsapp.read_number(text, region, field=phone_field, value=given)
        shown = " ".join(text.split()) if text.startswith("+") else whatsapp.international_format(number)
    elif given is not None:
        shown = whatsapp.international_format(whatsapp.normalize_phone(given, field=phone_field, region=region))
    else:
        raise InvalidInputError(field, dict(entry), "a phone needs phone or wa_id")
    return {"phone": shown, **_texts(entry, ("type",), field), **({"wa_id": wa_id} if wa_id else {})}


def _url(value: Any, field: str) -> str:
    text = _text(value, field)
    if _SCHEMELESS_URL.fullmatch(text):
        text = f"https://{text}"  # www.example.com, as people write a site; every site worth a card has TLS
    if not _URL.fullmatch(text):
        raise InvalidInputError(field, value, "a url is a web address: https://example.com, or example.com")
    return text


def _birthday(value: Any, field: str) -> str:
    if isinstance(value, dt.date):  # a datetime is a date too: its day is meant
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    text = value.strip() if isinstance(value, str) else ""
    with contextlib.suppress(ValueError):  # 1990-02-30 has the form, but is no date
        if _BIRTHDAY.fullmatch(text):
            return dt.date.fromisoformat(text).isoformat()
    raise InvalidInputError(field, value, "a birthday is a real date written YYYY-MM-DD")


def _some_of(value: Mapping[Any, Any], keys: tuple[str, ...], field: str, needs: str) -> dict[str, str]:
    """The free-text ``keys`` of a mapping that has no other key and gives at least one (``needs`` says so)."""
    _only(value, keys, field)
    given = _texts(value, keys, field)
    if not given:
        raise InvalidInputError(field, dict(value), needs)
    return given


def _texts(value: Mapping[Any, Any], keys: tuple[str, ...], field: str) -> dict[str, str]:
    """The free-text ``keys`` a mapping gives, in that order."""
    return {key: _text(value[key], f"{field}.{key}") for key in keys if value.get(key) is not None}


def _only(value: Mapping[Any, Any], keys: tuple[str, ...], field: str, says: str = "is not a field here; use") -> None:
    """Refuses the first key of ``value`` not among ``keys``: the refusal ``says`` so, and names them."""
    for key in value:
        if key not in keys:
            raise InvalidInputError(f"{field}.{_key(key)}", value[key], f"{says} {', '.join(keys)}")


def _key(key: Any) -> str:
    """An unknown key as a field name shows it: a printable text as it is, anything else as its repr, cut
    short (a key that cannot even be printed by its type's name)."""
    try:
        shown = key if isinstance(key, str) and key.isprintable() else repr(key)
    except Exception:  # a key's own __repr__ may raise anything; the error must still name the card
        shown = f"<{type(key).__name__}>"
    return shown if len(shown) <= _SHOWN_KEY else f"{shown[: _SHOWN_KEY - 1]}…"


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(field, value, f"must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidInputError(field, value, "is empty")
    if len(text) > MAX_TEXT:
        raise InvalidInputError(
            field, value, f"is {len(text):,} characters long; a card's text is at most {MAX_TEXT:,}"
        )
    if _CONTROL.search(text):
        raise InvalidInputError(field, value, "holds a control character (a line break, a tab, a NUL, ...)")
    return text
