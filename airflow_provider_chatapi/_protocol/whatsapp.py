"""WhatsApp ids, the same for every dialect: phone numbers, contact ids, chat ids, lists as DAGs pass them.

Everything a DAG author or an upstream task passes is turned into the forms WhatsApp uses (digits with
the country code; ``digits@c.us``; ``…@g.us``), or refused with an :class:`InvalidInputError` that
names the field and the value, before any request is built.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_chatapi.exceptions import InvalidInputError

__all__ = [
    "DIGITS",
    "GROUP_SUFFIX",
    "LID_SUFFIX",
    "PRIVATE_SUFFIX",
    "international_format",
    "normalize_chat_id",
    "normalize_contact_id",
    "normalize_contact_ids",
    "normalize_phone",
    "normalize_quoted_message_id",
    "normalize_recipients",
    "parse_literal",
]

PRIVATE_SUFFIX = "@c.us"
GROUP_SUFFIX = "@g.us"
LID_SUFFIX = "@lid"
# E.164: a country code never starts with 0 and a full number has at most 15 digits; the shortest
# numbers in use (Niue, Saint Helena) have 7.
_MIN_PHONE_DIGITS = 7
_MAX_PHONE_DIGITS = 15
_NO_COUNTRY_CODE = (
    "does not start with a country code in use (+{prefix}…): write the country code first, "
    "not a national prefix such as 8 or 0"
)
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
DIGITS = re.compile(r"[0-9]+")
# Classic groups are "<creator's number>-<unix time>"; newer ones a long number (120363...).
_GROUP_ID = re.compile(r"[1-9][0-9]{6,14}-[0-9]{9,11}|[1-9][0-9]{9,24}")
_LID = re.compile(r"[0-9A-Za-z._:-]{1,128}")  # 1msg's opaque linked ids: no whitespace, markup or sprawl
_MAX_RENDERED = 1_000_000  # characters of a rendered list: far more than any real list of numbers
_MESSAGE_ID = re.compile(r"[^\s]{1,500}")


def normalize_phone(value: Any, *, field: str = "phone") -> str:
    """Return a phone number as the gateway wants it: digits only, country code first.

    ``"+7 (900) 111-11-11"``, ``"79001111111"`` and ``79001111111`` all give ``"79001111111"``.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInputError(field, value, "a phone number must be a string or an int")
    if isinstance(value, int) and value <= 0:
        raise InvalidInputError(field, value, "a phone number must be positive")
    if isinstance(value, int) and value >= 10**_MAX_PHONE_DIGITS:
        raise InvalidInputError(field, value, f"a phone number has at most {_MAX_PHONE_DIGITS} digits")
    return _phone_digits(str(value), field, value)


@functools.lru_cache(maxsize=4096)  # the same numbers go out again and again; an error is never cached
def _phone_digits(text: str, field: str, value: Any) -> str:
    """The digits of a written phone number; errors name ``value``, the whole of what was given."""
    number = _PHONE_SEPARATORS.sub("", text)
    if not number:
        raise InvalidInputError(field, value, "is empty")
    if number.startswith("+"):
        number = number[1:]
    elif number.startswith("00"):
        number = number[2:]  # the international call prefix, as dialled in much of the world
    if not DIGITS.fullmatch(number):
        raise InvalidInputError(
            field, value, "a phone number may hold only digits, spaces, dashes, dots, brackets and a leading +"
        )
    if number.startswith("0"):
        raise InvalidInputError(
            field, value, "starts with 0, so it looks like a national number; write the country code first"
        )
    if not _MIN_PHONE_DIGITS <= len(number) <= _MAX_PHONE_DIGITS:
        raise InvalidInputError(
            field,
            value,
            f"has {len(number)} digits; an international number has {_MIN_PHONE_DIGITS} to {_MAX_PHONE_DIGITS}",
        )
    problem = _numbering_plan_problem(number)
    if problem:
        raise InvalidInputError(field, value, problem)
    return number


@functools.lru_cache(maxsize=4096)  # the same contacts go out again and again
def _numbering_plan_problem(number: str) -> str | None:
    """What the numbering plan of the number's country says against it, if anything.

    Google's libphonenumber metadata knows each country's code and number lengths: it catches a
    national number written without its country code (``89001111111``: Russia's trunk prefix 8 where
    the country code 7 belongs), and numbers too short or too long for their country. Only lengths
    are checked, not number ranges, so a newly opened range is never refused.
    """
    import phonenumbers  # here, not at the top: ~50 ms and 3 MB of metadata, needed only to send

    try:
        parsed = phonenumbers.parse(f"+{number}")
    except phonenumbers.NumberParseException:
        return _NO_COUNTRY_CODE.format(prefix=number[:3])
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    if reason == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return _NO_COUNTRY_CODE.format(prefix=number[:3])
    return f"has the wrong number of digits for a +{parsed.country_code} number"


def normalize_contact_id(value: Any, *, field: str = "contact_ids") -> str:
    """Return a contact's WhatsApp id, ``digits@c.us``; a bare phone number gets the suffix."""
    if isinstance(value, str):
        text = value.strip()
        suffix = text[-len(PRIVATE_SUFFIX) :].lower()
        if suffix == GROUP_SUFFIX:
            raise InvalidInputError(field, value, "is a group chat id; a contact is a person's id (digits@c.us)")
        if suffix == PRIVATE_SUFFIX:
            return _phone_digits(text[: -len(PRIVATE_SUFFIX)], field, value) + PRIVATE_SUFFIX
        if "@" in text:
            raise InvalidInputError(field, value, "a contact id ends in @c.us")
    return normalize_phone(value, field=field) + PRIVATE_SUFFIX


def normalize_contact_ids(value: Any, *, field: str = "contact_ids") -> tuple[str, ...]:
    """Return the contacts to send as unique ``digits@c.us`` ids, in the order given.

    Takes whatever an upstream task or a template produces: a list, tuple or set; a single id or an int;
    a rendered Python or JSON list such as ``"['79001111111', '79002222222@c.us']"``; or a
    comma-separated string.
    """
    return _unique_contact_ids(tuple(_listed_items(value, field, "contact")), field)


@functools.lru_cache(maxsize=1024)  # a DAG sends the same list of contacts to many recipients
def _unique_contact_ids(items: tuple[str | int, ...], field: str) -> tuple[str, ...]:
    ids = [normalize_contact_id(item, field=f"{field}[{index}]") for index, item in enumerate(items)]
    return tuple(dict.fromkeys(ids))


def normalize_recipients(value: Any, *, field: str = "recipients") -> list[dict[str, str]]:
    """Return each recipient as ``{"phone": digits}`` or ``{"chat_id": id}``, in the order given.

    Takes the same forms as :func:`normalize_contact_ids`; an item with an ``@`` is a chat id, any
    other a phone number. A recipient named twice is an error: each gets one card.
    """
    targets: dict[str, dict[str, str]] = {}
    for index, item in enumerate(_listed_items(value, field, "recipient")):
        item_field = f"{field}[{index}]"
        if isinstance(item, str) and "@" in item:
            target = {"chat_id": normalize_chat_id(item, field=item_field)}
        else:
            target = {"phone": normalize_phone(item, field=item_field)}
        chat = target.get("chat_id") or f"{target['phone']}{PRIVATE_SUFFIX}"
        if chat in targets:
            raise InvalidInputError(item_field, item, f"names the chat {chat} again; each recipient gets one card")
        targets[chat] = target
    return list(targets.values())


def _listed_items(value: Any, field: str, noun: str) -> list[Any]:
    """The items of a list however it arrived: a sequence, one item, or a rendered or comma-separated string."""
    if value is None:
        raise InvalidInputError(field, value, "is required")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        items = _split_text(value, field) if isinstance(value, str) else [value]
    elif isinstance(value, (Mapping, bytes, bytearray)) or not isinstance(value, Iterable):
        raise InvalidInputError(field, value, f"expected a list of {noun}s, got {type(value).__name__}")
    else:
        items = _in_order(value)
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise InvalidInputError(
                f"{field}[{index}]", item, f"a {noun} is a string or an int, not {type(item).__name__}"
            )
    if not items:
        raise InvalidInputError(field, value, f"is empty; give at least one {noun}")
    return items


def _in_order(items: Iterable[Any]) -> list[Any]:
    """The items as a list; a set's sorted, since its own order is its hash order, which differs between
    processes (a retry would build another request than the try it resumes)."""
    return sorted(items, key=str) if isinstance(items, (set, frozenset)) else list(items)


def _split_text(text: str, field: str) -> list[Any]:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[({":
        # A list rendered by a non-native Jinja template arrives as its repr (or as JSON).
        if len(stripped) > _MAX_RENDERED:
            raise InvalidInputError(field, text, f"is a rendered list of more than {_MAX_RENDERED:,} characters")
        parsed = parse_literal(stripped)
        if not isinstance(parsed, (list, tuple, set, frozenset)):
            raise InvalidInputError(field, text, "looks like a rendered list but is not one")
        return _in_order(parsed)  # a rendered set too lists its items in its process's hash order
    parts = [part.strip() for part in stripped.split(",")]
    for index, part in enumerate(parts):
        if not part:
            raise InvalidInputError(f"{field}[{index}]", part, f"is empty in the comma-separated {text!r}")
    return parts


def parse_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…", nested past Python's stack
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def normalize_chat_id(value: Any, *, field: str = "chat_id") -> str:
    """Return a chat id: ``digits@c.us`` for a private chat, ``<id>@g.us`` for a group."""
    if not isinstance(value, str):
        raise InvalidInputError(
            field, value, "a chat id is a string such as '17633123456@c.us'; for a bare number use phone="
        )
    text = value.strip()
    suffix = text[-len(PRIVATE_SUFFIX) :].lower()
    if suffix == PRIVATE_SUFFIX:
        return _phone_digits(text[: -len(PRIVATE_SUFFIX)], field, value) + PRIVATE_SUFFIX
    if suffix == GROUP_SUFFIX:
        group = text[: -len(GROUP_SUFFIX)]
        if not _GROUP_ID.fullmatch(group):
            raise InvalidInputError(field, value, "a group id is '<number>-<timestamp>@g.us' or '<long number>@g.us'")
        return group + GROUP_SUFFIX
    if text.lower().endswith(LID_SUFFIX):  # WhatsApp's newer opaque "linked id" of a chat; only 1msg takes it
        if not _LID.fullmatch(text[: -len(LID_SUFFIX)]):
            raise InvalidInputError(field, value, "a linked id is 1 to 128 letters, digits or '._:-' before @lid")
        return text
    raise InvalidInputError(
        field, value, "a chat id ends in @c.us (private) or @g.us (group); for a bare number use phone="
    )


def normalize_quoted_message_id(value: Any, *, field: str = "quoted_message_id") -> str:
    """Return the id of a message to reply to; each dialect checks the form of its own ids."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _MESSAGE_ID.fullmatch(text):
        raise InvalidInputError(field, value, "a message id is a non-empty string without spaces")
    return text


@functools.lru_cache(maxsize=4096)
def international_format(number: str) -> str:
    """``79001111111`` as people write it across borders: ``+7 900 111-11-11``."""
    import phonenumbers  # see _numbering_plan_problem

    return phonenumbers.format_number(phonenumbers.parse(f"+{number}"), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
