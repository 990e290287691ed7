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

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_chatapi._protocol.whatsapp import (
    MAX_RENDERED,
    RegionSource,
    digits_of,
    international_format,
    normalize_phone,
    parse_literal,
    read_number,
)
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

Card = dict[str, Any]
"""A contact card: WhatsApp's contact object, normalised."""

NAME_PARTS = ("prefix", "first_name", "middle_name", "last_name", "suffix")
"""A name's parts: WhatsApp wants at least one besides ``formatted_name``."""
ORG_FIELDS = ("company", "department", "title")
ENTRY_FIELDS = {
    "phones": ("phone", "type", "wa_id"),
    "emails": ("email", "type"),
    "urls": ("url", "type"),
    "addresses": ("street", "city", "state", "zip", "country", "country_code", "type"),
}
"""A card's list fields, and the keys an entry of each may have (every one free text but ``wa_id``)."""
MAX_TEXT = 1024
"""Most characters in one text field of a card (a name, a company, a street, ...)."""
MAX_CONTACTS = 257
"""Most contacts one message may carry (Meta's contacts message)."""
_SHORTHANDS = {"phone": "phones", "email": "emails", "url": "urls"}
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_SCHEMELESS_URL = re.compile(r"[^\s/?#:@]+\.[^\s/?#:@]+(?:[/?#][^\s]*)?")  # www.example.com/path
_BIRTHDAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CARD_EXAMPLE = "{'name': 'Ann Lee', 'phone': '+7 900 111-11-11'}"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHOWN_KEY = 40  # characters of an unknown key put in a field name
_MAX_ZIP = 10**12  # a postal code read as a number has a dozen digits at most


def normalize_contacts(value: Any, *, field: str = "contacts", region: RegionSource = None) -> tuple[Card, ...]:
    """Return the cards to send, in the order given, each once.

    Takes a list of mappings, one mapping, an upstream task's output, or a template's rendering of them
    (JSON or a Python literal). ``region`` reads phone numbers written the national way.
    """
    items = _card_items(value, field)
    unique: dict[str, Card] = {}
    for index, item in enumerate(items):
        card = _card(item, f"{field}[{index}]", region)
        unique.setdefault(json.dumps(card, sort_keys=True), card)
    return tuple(unique.values())


def card_for_number(number: str) -> Card:
    """The card for a bare WhatsApp number: named by the number in international format."""
    shown = international_format(number)
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
            number = read_number(phone["phone"], None, field="phone", value=phone["phone"])
            if not number.extension:
                numbers.append(digits_of(number))
    return numbers


def _card_items(value: Any, field: str) -> list[Any]:
    if value is None:
        raise InvalidInputError(field, value, "is required")
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInputError(field, value, "is empty; give at least one contact card")
        if len(value) > MAX_RENDERED:
            raise InvalidInputError(field, value, f"is a rendered list of more than {MAX_RENDERED:,} characters")
        parsed = parse_literal(value.strip())
        if not isinstance(parsed, (Mapping, list, tuple)):
            raise InvalidInputError(
                field, value, f"text must be a JSON or Python list of cards, such as [{_CARD_EXAMPLE}]"
            )
        value = parsed
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise InvalidInputError(field, value, f"expected a list of contact cards, got {type(value).__name__}")
    items = list(value)
    if not items:
        raise InvalidInputError(field, value, "is empty; give at least one contact card")
    return items


def _card(value: Any, field: str, region: RegionSource) -> Card:
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            field, value, f"a contact card is a mapping such as {_CARD_EXAMPLE}, not {type(value).__name__}"
        )
    for key in value:
        if key not in _READERS and key not in _SHORTHANDS:
            known = ", ".join([*_READERS, *_SHORTHANDS])
            raise InvalidInputError(f"{field}.{_key(key)}", value[key], f"is not a card field; a card has {known}")
    for short, full in _SHORTHANDS.items():
        if short in value and full in value:
            raise InvalidInputError(f"{field}.{short}", value[short], f"give {short} or {full}, not both")
    if value.get("name") is None:
        raise InvalidInputError(f"{field}.name", value.get("name"), "every card needs a name")
    readers: dict[str, Callable[[Any, str], Any]] = {**_READERS, "phones": functools.partial(_phones, region=region)}
    card: Card = {}
    for key, read in readers.items():
        given_as = next((name for name, full in _SHORTHANDS.items() if full == key and name in value), key)
        if value.get(given_as) is not None:
            card[key] = read(value[given_as], f"{field}.{given_as}")
    return card


def _name(value: Any, field: str) -> dict[str, str]:
    if isinstance(value, str):
        return _name_from_text(_text(value, field))
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, value, "a name is a string ('Ann Lee') or a mapping with formatted_name")
    _only(value, ("formatted_name", *NAME_PARTS), field)
    parts = {part: _text(value[part], f"{field}.{part}") for part in NAME_PARTS if value.get(part) is not None}
    if value.get("formatted_name") is not None:
        formatted = _text(value["formatted_name"], f"{field}.formatted_name")
    elif parts:
        formatted = " ".join(parts[part] for part in NAME_PARTS if part in parts)
    else:
        raise InvalidInputError(field, value, f"a name needs formatted_name or one of {', '.join(NAME_PARTS)}")
    # WhatsApp shows formatted_name, but refuses a name that has no part besides it.
    return {"formatted_name": formatted, **(parts or _name_from_text(formatted))}


def _name_from_text(text: str) -> dict[str, str]:
    first, _, last = " ".join(text.split()).partition(" ")
    return {"formatted_name": text, "first_name": first, **({"last_name": last} if last else {})}


def _phones(value: Any, field: str, region: RegionSource = None) -> list[dict[str, str]]:
    return [_phone(item, item_field, region) for item, item_field in _listed(value, field)]


def _phone(value: Any, field: str, region: RegionSource) -> dict[str, str]:
    """A phone entry: a number alone (no ``wa_id``), or ``{phone, type, wa_id}`` as given."""
    entry = value if isinstance(value, Mapping) else {"phone": value}
    _only(entry, ENTRY_FIELDS["phones"], field)
    if entry.get("phone") is None and entry.get("wa_id") is None:
        raise InvalidInputError(field, dict(entry), "a phone needs phone or wa_id")
    if entry.get("wa_id") is None:
        wa_id = None
        shown = _shown_number(entry["phone"], field if entry is not value else f"{field}.phone", region)
    else:
        wa_id = normalize_phone(entry["wa_id"], field=f"{field}.wa_id", region=region)
        given = entry.get("phone")
        shown = international_format(wa_id) if given is None else _text(given, f"{field}.phone")
    phone = {"phone": shown}
    if entry.get("type") is not None:
        phone["type"] = _text(entry["type"], f"{field}.type")
    if wa_id is not None:
        phone["wa_id"] = wa_id
    return phone


def _shown_number(value: Any, field: str, region: RegionSource) -> str:
    """A phone with no ``wa_id`` beside it: a real number, shown as written when that is with ``+`` (it dials
    from anywhere), else in international form (``8 (495) 123-45-67`` dials only from Russia)."""
    if not isinstance(value, str):
        return international_format(normalize_phone(value, field=field, region=region))
    text = _text(value, field)
    number = read_number(text, region, field=field, value=value)
    return " ".join(text.split()) if text.startswith("+") else international_format(number)


def _emails(value: Any, field: str) -> list[dict[str, str]]:
    return [_typed(item, item_field, "email", _text) for item, item_field in _listed(value, field)]


def _urls(value: Any, field: str) -> list[dict[str, str]]:
    return [_typed(item, item_field, "url", _url) for item, item_field in _listed(value, field)]


def _typed(value: Any, field: str, key: str, check: Callable[[Any, str], str]) -> dict[str, str]:
    """An email or url entry: the bare value, or ``{key: value, "type": free text}``."""
    if not isinstance(value, Mapping):
        return {key: check(value, field)}
    _only(value, ENTRY_FIELDS[f"{key}s"], field)
    entry = {key: check(value.get(key), f"{field}.{key}")}
    if value.get("type") is not None:
        entry["type"] = _text(value["type"], f"{field}.type")
    return entry


def _url(value: Any, field: str) -> str:
    text = _text(value, field)
    if _SCHEMELESS_URL.fullmatch(text):
        text = f"https://{text}"  # www.example.com, as people write a site; every site worth a card has TLS
    if not _URL.fullmatch(text):
        raise InvalidInputError(field, value, "a url is a web address: https://example.com, or example.com")
    return text


def _org(value: Any, field: str) -> dict[str, str]:
    if isinstance(value, str):
        return {"company": _text(value, field)}
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, value, "an org is a company name or a mapping of company, department, title")
    _only(value, ORG_FIELDS, field)
    org = {key: _text(value[key], f"{field}.{key}") for key in ORG_FIELDS if value.get(key) is not None}
    if not org:
        raise InvalidInputError(field, dict(value), f"an org needs one of {', '.join(ORG_FIELDS)}")
    return org


def _addresses(value: Any, field: str) -> list[dict[str, str]]:
    addresses = []
    fields = ENTRY_FIELDS["addresses"]
    for item, item_field in _listed(value, field, allow_scalar=False):
        if not isinstance(item, Mapping):
            raise InvalidInputError(item_field, item, f"an address is a mapping of {', '.join(fields)}")
        _only(item, fields, item_field)
        address = {
            key: _text(_zip_text(item[key]) if key == "zip" else item[key], f"{item_field}.{key}")
            for key in fields
            if item.get(key) is not None
        }
        if not address:
            raise InvalidInputError(item_field, dict(item), "an address needs at least one field")
        addresses.append(address)
    return addresses


def _zip_text(value: Any) -> Any:
    # A postal code read from a spreadsheet or JSON often arrives as a number; a bool is no postal code
    # (True is an int to Python), so it stays as it is and is refused as text.
    # A 5,000-digit int is no postal code either (and str() refuses it).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_ZIP else value


def _birthday(value: Any, field: str) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and _BIRTHDAY.fullmatch(text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise InvalidInputError(field, value, "a birthday is a real date written YYYY-MM-DD")


_READERS: dict[str, Callable[[Any, str], Any]] = {  # phones read with the card's region: see _card
    "name": _name,
    "phones": _phones,
    "emails": _emails,
    "urls": _urls,
    "org": _org,
    "addresses": _addresses,
    "birthday": _birthday,
}


def _listed(value: Any, field: str, *, allow_scalar: bool = True) -> list[tuple[Any, str]]:
    """The entries of a card's list field with their own field names; one entry may stand alone."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise InvalidInputError(field, value, "is empty; leave it out instead")
        return [(item, f"{field}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping) or (allow_scalar and isinstance(value, (str, int)) and not isinstance(value, bool)):
        return [(value, field)]
    raise InvalidInputError(field, value, f"expected a list, got {type(value).__name__}")


def _only(value: Mapping[str, Any], allowed: Iterable[str], field: str) -> None:
    allowed = tuple(allowed)
    for key in value:
        if key not in allowed:
            raise InvalidInputError(
                f"{field}.{_key(key)}", value[key], f"is not a field here; use {', '.join(allowed)}"
            )


def _key(key: Any) -> str:
    """An unknown key as a field name shows it: a short text as it is, anything else as a short repr (a key
    that cannot even be printed by its type's name)."""
    if isinstance(key, str) and len(key) <= _SHOWN_KEY and key.isprintable():
        return key
    try:
        shown = repr(key)
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
