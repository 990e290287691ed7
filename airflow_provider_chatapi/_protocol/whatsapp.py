"""WhatsApp ids, the same for every dialect: phone numbers, contact ids, chat ids, lists as DAGs pass them.

Everything a DAG author or an upstream task passes is turned into the forms WhatsApp uses (digits with
the country code; ``digits@c.us``; ``…@g.us``), or refused with an :class:`InvalidInputError` that
names the field and the value, before any request is built.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from airflow_provider_chatapi.exceptions import InvalidInputError

if TYPE_CHECKING:
    import phonenumbers

__all__ = [
    "DIGITS",
    "GROUP_SUFFIX",
    "LID_SUFFIX",
    "MAX_RENDERED",
    "PRIVATE_SUFFIX",
    "RegionSource",
    "checked_message_id",
    "checked_region",
    "digits_of",
    "international_format",
    "normalize_chat_id",
    "normalize_contact_ids",
    "normalize_phone",
    "normalize_recipients",
    "parse_literal",
    "parse_rendered",
    "read_number",
]

PRIVATE_SUFFIX = "@c.us"
GROUP_SUFFIX = "@g.us"
LID_SUFFIX = "@lid"
_MAX_PHONE_DIGITS = 15  # E.164
_NO_COUNTRY_CODE = (
    "does not start with a country code in use (+{prefix}…): write the country code first, "
    "not a national prefix such as 8 or 0"
)
_DIALLED = re.compile(r"\+?[0-9\s().\-]+")  # what a person dials: digits, separators, a leading +
_NOT_DIGIT = re.compile(r"[^0-9]")
_INTERNATIONAL = re.compile(r"\+|00")  # the leading + of E.164, or the call prefix dialled in much of the world
# The region a national number is read in: a country code, or how to learn it (a hook asks its connection
# only when a number needs it), or None for none.
RegionSource: TypeAlias = "str | Callable[[], str | None] | None"
DIGITS = re.compile(r"[0-9]+")
# Classic groups are "<creator's number>-<unix time>"; newer ones a long number (120363...).
_GROUP_ID = re.compile(r"[1-9][0-9]{6,14}-[0-9]{9,11}|[1-9][0-9]{9,24}")
_LID = re.compile(r"[0-9A-Za-z._:-]{1,128}")  # 1msg's opaque linked ids: no whitespace, markup or sprawl
# Each suffix a chat id may end in: the form of what comes before it, and the refusal of any other.
_CHAT_IDS = {
    PRIVATE_SUFFIX: (DIGITS, "a WhatsApp id holds only digits (with the country code) before @c.us"),
    GROUP_SUFFIX: (_GROUP_ID, "a group id is '<number>-<timestamp>@g.us' or '<long number>@g.us'"),
    LID_SUFFIX: (_LID, "a linked id is 1 to 128 letters, digits or '._:-' before @lid"),  # 1msg only
}
_LISTS = (list, tuple, set, frozenset)  # what a list of contacts or recipients may be rendered as
MAX_RENDERED = 1_000_000  # characters of a rendered list: far more than any real list of numbers
# Every id a gateway gives: classic false_1747…@c.us_DF38…, 1msg's gBGG…-8 and wamid.HBgL…== (base64).
_MESSAGE_ID = re.compile(r"[\w.:@=+/-]{1,500}", re.ASCII)


def normalize_phone(value: Any, *, field: str = "phone", region: RegionSource = None) -> str:
    """Return a phone number as the gateway wants it: digits only, country code first.

    ``"+7 (900) 111-11-11"``, ``"0079001111111"``, ``"79001111111"`` and ``79001111111`` all give
    ``"79001111111"``; ``"8 (900) 111-11-11"`` does too with ``region="RU"``, and is refused without one.
    See :func:`read_number` for the rules; unlike a phone on a card, no letters (so no extension) are taken.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInputError(field, value, "a phone number must be a string or an int")
    if isinstance(value, int) and not 0 < value < 10**_MAX_PHONE_DIGITS:  # str() refuses an int of 4,300 digits
        raise InvalidInputError(field, value, f"a phone number must be positive, of at most {_MAX_PHONE_DIGITS} digits")
    text = str(value).strip()
    if callable(region):  # asked only when the number's meaning depends on it: see read_number
        region = None if _INTERNATIONAL.match(text) else region()
    digits, problem = _dialled_digits(text, region)
    if problem:
        raise InvalidInputError(field, value, problem)
    return digits


@functools.lru_cache(maxsize=8192)  # the same numbers go out again and again
def _dialled_digits(text: str, region: str | None) -> tuple[str, str]:
    """A number as a person dials it (digits, separators, a leading +) as digits with the country code, and
    ""; or "" and what is wrong with it (see :func:`read_number` for how it is read)."""
    if not text:
        return "", "is empty"
    if not _DIALLED.fullmatch(text):  # no letters: no extension, which WhatsApp cannot dial
        return "", "a phone number may hold only digits, spaces, dashes, dots, brackets and a leading +"
    digits = len(_NOT_DIGIT.sub("", text))
    if digits > _MAX_PHONE_DIGITS:
        return "", f"has {digits} digits; a phone number has at most {_MAX_PHONE_DIGITS}"
    number = _reading(text, region)
    return ("", number) if isinstance(number, str) else (digits_of(number), "")


def read_number(text: str, region: RegionSource, *, field: str, value: Any) -> phonenumbers.PhoneNumber:
    """The number ``text`` means, as libphonenumber reads it; refused unless it is valid and unambiguous.

    - ``+…`` or ``00…``: international, whatever the region.
    - A bare run of digits: the gateway's own form, digits with the country code. With a region it may also
      be a national number there (``6505551234`` in ``US``); where both readings are valid numbers and
      differ (``84951234567`` in ``RU``: Moscow, or Vietnam), it is refused as ambiguous.
    - Any other writing (brackets, spaces or dashes without ``+``) is national: read in ``region``, and
      refused without one, naming what it would have meant read as international.

    Every number must be valid (``is_valid_number``) in the country it resolves to, not only of a
    possible length: ``8 (495) 123-45-67`` without a region would otherwise be a valid Vietnamese number.
    """
    # The region is asked of its source only when the number's meaning depends on it (no + or 00): a hook
    # reads its connection's default_region then, and not for an international number.
    if callable(region):
        region = None if _INTERNATIONAL.match(text) else region()
    outcome = _reading(text, region)
    if isinstance(outcome, str):
        raise InvalidInputError(field, value, outcome)
    return outcome


@functools.lru_cache(maxsize=8192)  # the same numbers go out again and again
def _reading(text: str, region: str | None) -> phonenumbers.PhoneNumber | str:
    """The number ``text`` means in ``region``, or what is wrong with it (see :func:`read_number`)."""
    if international := _INTERNATIONAL.match(text):
        return _valid_number(f"+{text[international.end() :]}", None)
    # A bare run of digits is the gateway's own form: digits with the country code.
    as_digits = _valid_number(f"+{text}", None) if DIGITS.fullmatch(text) else None
    if region is None and as_digits is not None:
        return (
            "starts with 0, so it looks like a national number: write the country code first, or set default_region"
            if text.startswith("0")
            else as_digits
        )
    if region is None:
        meant = _valid_number("+" + _NOT_DIGIT.sub("", text), None)
        hint = (
            "it has no country code" if isinstance(meant, str) else f"read as international it would be {_shown(meant)}"
        )
        return (
            f"is written the national way (no + or 00 before a country code): {hint}; write it with + and its "
            "country code, or set default_region"
        )
    national = _valid_number(text, region, f" in {region}")
    if as_digits is None or isinstance(as_digits, str):
        return national
    if isinstance(national, str) or digits_of(national) == digits_of(as_digits):
        return as_digits
    return (
        f"is ambiguous: {_shown(national)} read as a number in {region}, or {_shown(as_digits)} read as digits "
        "with their country code; write it with + and its country code"
    )


def _valid_number(text: str, region: str | None, where: str = "") -> phonenumbers.PhoneNumber | str:
    """The number ``text`` means in ``region`` if libphonenumber's metadata holds it valid, else why not
    (``where``: " in RU", or "")."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return _NO_COUNTRY_CODE.format(prefix=text.lstrip("+")[:3])
        return "is not a phone number"
    if phonenumbers.is_valid_number(number):
        return number
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return _NO_COUNTRY_CODE.format(prefix=digits_of(number)[:3])
    if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
        country = phonenumbers.region_code_for_country_code(number.country_code or 0)  # set by parse; None to mypy
        problem = f"is not a valid +{number.country_code} ({country}) number: no such range is in use"
    else:
        problem = f"has the wrong number of digits for a +{number.country_code} number"
    return (
        f"{problem}{where} (libphonenumber {phonenumbers.__version__}; if the range is new, upgrade phonenumberslite)"
    )


def digits_of(number: phonenumbers.PhoneNumber) -> str:
    import phonenumbers

    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _shown(number: phonenumbers.PhoneNumber) -> str:
    """``+84 951 234 567 (VN)``: a number as people write it across borders, and its country."""
    import phonenumbers

    return f"{international_format(number)} ({phonenumbers.region_code_for_number(number)})"


def checked_region(value: Any, field: str = "default_region") -> str | None:
    """An ISO 3166 country code that libphonenumber knows (``"RU"``, ``"us"``), upper-cased; None for none."""
    import phonenumbers

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    region = value.strip().upper() if isinstance(value, str) else None
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInputError(field, value, "must be a two-letter ISO country code such as 'RU' or 'US'")
    return region


def normalize_contact_ids(value: Any, *, field: str = "contact_ids", region: RegionSource = None) -> tuple[str, ...]:
    """Return the contacts to send as unique ``digits@c.us`` ids, in the order given.

    Takes whatever an upstream task or a template produces: a list, tuple or set; a single id or an int;
    a rendered Python or JSON list such as ``"['79001111111', '79002222222@c.us']"``; or a
    comma-separated string.
    """
    return tuple(dict.fromkeys([chat for _, _, chat, _ in _listed_chats(value, field, "contact", region)]))


def normalize_recipients(
    value: Any, *, field: str = "recipients", region: RegionSource = None
) -> list[tuple[str, str | None]]:
    """Return each recipient's chat id, and its phone number when given as one, in the order given.

    Takes the same forms as :func:`normalize_contact_ids`; an item with an ``@`` is a chat id, any
    other a phone number. A recipient named twice is an error: each gets one card.
    """
    targets: dict[str, str | None] = {}
    for item_field, item, chat, phone in _listed_chats(value, field, "recipient", region):
        if chat in targets:
            raise InvalidInputError(item_field, item, f"names the chat {chat} again; each recipient gets one card")
        targets[chat] = phone
    return list(targets.items())


def _listed_chats(
    value: Any, field: str, noun: str, region: RegionSource
) -> Iterator[tuple[str, Any, str, str | None]]:
    """Each item of a list of contacts or recipients, however the list arrived (a sequence, one item, or a
    rendered or comma-separated string): its field, the item, its chat id and, given as one, its phone number;
    each read only once the one before it was taken (a recipient named twice is refused there and then).

    An item with an ``@`` is a chat id (a contact's only ``digits@c.us``), any other a phone number."""
    text = value.strip() if isinstance(value, str) else ""
    if value is None:
        raise InvalidInputError(field, value, "is required")
    if text[:1] in ("[", "(", "{"):  # a list rendered by a non-native Jinja template: its repr, or JSON
        parsed = parse_rendered(text, field, value, _LISTS, "looks like a rendered list but is not one")
        # A set is sorted: its own order is its hash order, which differs between processes (a retry would
        # build another request than the try it resumes), and a rendered set lists its items in that order.
        items = sorted(parsed, key=str) if isinstance(parsed, (set, frozenset)) else list(parsed)
    elif isinstance(value, str):
        items = [part.strip() for part in text.split(",")] if text else []
        if "" in items:
            raise InvalidInputError(f"{field}[{items.index('')}]", "", f"is empty in the comma-separated {value!r}")
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (Mapping, bytes, bytearray)) or not isinstance(value, Iterable):
        raise InvalidInputError(field, value, f"expected a list of {noun}s, got {type(value).__name__}")
    else:
        items = list(value)
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise InvalidInputError(
                f"{field}[{index}]", item, f"a {noun} is a string or an int, not {type(item).__name__}"
            )
    if isinstance(value, (set, frozenset)):
        items.sort(key=str)  # as a rendered set is, once every item is known to have a text of its own
    if not items:
        raise InvalidInputError(field, value, f"is empty; give at least one {noun}")
    for index, item in enumerate(items):
        item_field = f"{field}[{index}]"
        if isinstance(item, str) and "@" in item:
            yield item_field, item, normalize_chat_id(item, field=item_field, contact=noun == "contact"), None
        else:
            phone = normalize_phone(item, field=item_field, region=region)
            yield item_field, item, phone + PRIVATE_SUFFIX, phone


def parse_rendered(text: str, field: str, value: Any, kinds: tuple[type, ...], problem: str) -> Any:
    """What a non-native Jinja template rendered (``text``, stripped) read back: its repr or JSON, as
    :func:`parse_literal`; refused, naming ``field`` and ``value``, beyond :data:`MAX_RENDERED` characters, or
    (``problem`` says why) when it is not one of ``kinds``."""
    if len(text) > MAX_RENDERED:
        raise InvalidInputError(field, value, f"is a rendered list of more than {MAX_RENDERED:,} characters")
    parsed = parse_literal(text)
    if not isinstance(parsed, kinds):
        raise InvalidInputError(field, value, problem)
    return parsed


def parse_literal(text: str) -> Any:
    for parse in (json.loads, ast.literal_eval):
        # RecursionError: "[[[[…", nested past Python's stack.
        with contextlib.suppress(ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return parse(text)
    return None


def normalize_chat_id(value: Any, *, field: str = "chat_id", contact: bool = False) -> str:
    """Return a chat id: ``digits@c.us`` for a private chat, ``<id>@g.us`` for a group, ``<id>@lid`` for
    1msg's linked id; with ``contact``, only a person's (``digits@c.us``)."""
    if not isinstance(value, str):
        raise InvalidInputError(
            field, value, "a chat id is a string such as '17633123456@c.us'; for a bare number use phone="
        )
    head, at, tail = value.strip().rpartition("@")
    suffix = at + tail.lower()
    if contact and suffix != PRIVATE_SUFFIX:
        raise InvalidInputError(
            field, value, "a contact id ends in @c.us (a person's), not @g.us (a group chat id) or another suffix"
        )
    if suffix not in _CHAT_IDS:
        raise InvalidInputError(
            field, value, "a chat id ends in @c.us (private) or @g.us (group); for a bare number use phone="
        )
    form, problem = _CHAT_IDS[suffix]
    if not form.fullmatch(head):
        raise InvalidInputError(field, value, problem)
    if suffix == PRIVATE_SUFFIX:  # a WhatsApp id: always digits with the country code, region or not
        head, problem = _dialled_digits(head, None)
        if problem:
            raise InvalidInputError(field, value, problem)
    return head + suffix


def checked_message_id(value: Any, *, field: str = "message_id") -> str:
    """A message id as a send returned it: 1 to 500 letters, digits and ``._:@=+/-``, no space or markup.

    Each dialect checks the form of its own ids on top (a classic reply quotes ``false_…@c.us_…``)."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _MESSAGE_ID.fullmatch(text):
        raise InvalidInputError(
            field, value, "a message id is 1 to 500 letters, digits and ._:@=+/- (no space), as a send returned it"
        )
    return text


def international_format(number: phonenumbers.PhoneNumber | str) -> str:
    """A number as people write it across borders: ``+7 900 111-11-11`` (``79001111111`` is read as
    digits with the country code)."""
    import phonenumbers

    parsed = phonenumbers.parse(f"+{number}") if isinstance(number, str) else number  # checked before it is shown
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
