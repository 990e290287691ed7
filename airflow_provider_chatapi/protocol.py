"""The classic Chat API wire protocol, with no I/O and no Airflow.

Everything a transport must get right lives here, once: turning what a DAG author passes into the ids
the gateway accepts, building each request, reading each response, deciding what a failure means for
the message (certainly not queued, or possibly queued), and the exchanges of several requests as
generator *plans* (:data:`Plan`). The hook drives plans with ``requests`` or with ``httpx``; both
transports are thin and share every rule.

A gateway dialect (the classic chat-api.com protocol here; 1msg's full contact cards later) is a module
with this surface; the operator never sees it.

Exception tree::

    ChatApiError
    ├── InvalidInputError (also ValueError)   a bad argument, raised before any request is sent
    │   └── ConnectionConfigError              the ``chatapi`` connection is unusable
    ├── GatewayError                           the gateway failed or refused; .status_code, .gateway_message
    │   ├── NotSentError                       the gateway certainly queued nothing: sending again is safe
    │   │   ├── AuthenticationError            401/403: the token is wrong (permanent)
    │   │   ├── RejectedError                  ``sent: false``, an ``error`` body, another 4xx (permanent)
    │   │   ├── RateLimitedError               429 (transient); .retry_after, as for 503
    │   │   └── GatewayUnavailableError        503, or no connection could be made (transient)
    │   └── DeliveryUnknownError               the message may have been queued: never resend blindly
    └── FanOutError                            some sends of a batch failed; .outcomes holds each one's
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import re
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_API_URL",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ApiRequest",
    "ApiResponse",
    "AuthenticationError",
    "Call",
    "ChatApiError",
    "ConnectionConfigError",
    "DeliveryUnknownError",
    "FanOutError",
    "GatewayError",
    "GatewaySettings",
    "GatewayUnavailableError",
    "InvalidInputError",
    "NotSentError",
    "Plan",
    "PlanSteps",
    "RateLimitedError",
    "RejectedError",
    "SendResult",
    "build_message_history",
    "build_message_queue",
    "build_send_contact",
    "build_send_to_many",
    "build_status",
    "connection_failed",
    "describe_account_status",
    "fan_out_failure",
    "find_card_plan",
    "find_contact_card",
    "normalize_chat_id",
    "normalize_contact_id",
    "normalize_contact_ids",
    "normalize_phone",
    "normalize_quoted_message_id",
    "normalize_recipients",
    "parse_message_history",
    "parse_message_queue",
    "parse_send_response",
    "parse_status_response",
    "read_response",
    "recipient_chat_id",
    "resolve_api_url",
    "response_lost",
    "scrub_secret",
    "secret_forms",
    "send_plan",
    "settings_from_connection",
    "status_plan",
]

DEFAULT_API_URL = "https://api.chat-api.com"
DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the gateway to connect and, separately, to answer."""
DEFAULT_MAX_RETRIES = 3
"""Retries of a request the gateway certainly did not process (connect failure, 429, 503)."""
DEFAULT_MAX_IN_FLIGHT = 10
"""Requests one batch keeps in flight at once by default."""
CLOCK_SKEW = 120.0
"""Seconds by which the gateway's clock may differ from ours when looking for a message sent since a time."""

REDACTED = "***"
_SNIPPET_LENGTH = 200

# E.164: a country code never starts with 0 and a full number has at most 15 digits; the shortest
# numbers in use (Niue, Saint Helena) have 7.
_MIN_PHONE_DIGITS = 7
_MAX_PHONE_DIGITS = 15
_NO_COUNTRY_CODE = (
    "does not start with a country code in use (+{prefix}…): write the country code first, "
    "not a national prefix such as 8 or 0"
)
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_DIGITS = re.compile(r"[0-9]+")
_PRIVATE_SUFFIX = "@c.us"
_GROUP_SUFFIX = "@g.us"
# Classic groups are "<creator's number>-<unix time>"; newer ones a long number (120363...).
_GROUP_ID = re.compile(r"[1-9][0-9]{6,14}-[0-9]{9,11}|[1-9][0-9]{9,24}")
_QUOTED_MESSAGE_ID = re.compile(r"(?:true|false)_[^\s_]+@[cg]\.us_[0-9A-Za-z]+(?:_[^\s_]+@c\.us)?")
_INSTANCE_PATH = re.compile(r"/instance([0-9]+)$")


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class ChatApiError(Exception):
    """Base of every error this provider raises."""


class InvalidInputError(ChatApiError, ValueError):
    """An argument cannot be sent; raised before any request is made.

    ``field`` names the argument (``contact_ids[2]``, ``phone``, ...) and ``value`` is what it held.
    """

    def __init__(self, field: str, value: Any, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")


class ConnectionConfigError(InvalidInputError):
    """The ``chatapi`` connection is missing a field or holds one the provider cannot use."""


class GatewayError(ChatApiError):
    """The gateway failed, refused the request, or answered something unreadable."""

    outcome: ClassVar[str] = "the gateway's answer could not be used"

    def __init__(
        self,
        endpoint: str,
        gateway_message: str,
        *,
        status_code: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.gateway_message = gateway_message
        self.status_code = status_code
        answer = f"HTTP {status_code}" if status_code is not None else "no HTTP answer"
        super().__init__(f"Chat API {endpoint}: {answer}: {gateway_message} ({self.outcome})")


class NotSentError(GatewayError):
    """The gateway certainly did not queue the message; sending it again cannot duplicate it."""

    outcome = "nothing was queued"
    transient: ClassVar[bool] = False
    """Whether the same request may succeed later; a permanent failure needs a fix, not a retry."""

    def __init__(
        self,
        endpoint: str,
        gateway_message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        """Seconds the gateway asked to wait before trying again (its ``Retry-After``), if it said."""
        super().__init__(endpoint, gateway_message, status_code=status_code)


class AuthenticationError(NotSentError):
    """The gateway refused the token (HTTP 401 or 403)."""

    outcome = "nothing was queued; check the token in the connection"


class RejectedError(NotSentError):
    """The gateway refused the request itself (``sent: false``, an ``error`` body, or a 4xx)."""

    outcome = "nothing was queued; the gateway rejected the request"


class RateLimitedError(NotSentError):
    """HTTP 429; ``retry_after`` holds the seconds the gateway asked to wait, when it said."""

    outcome = "nothing was queued; the gateway is rate limiting"
    transient = True


class GatewayUnavailableError(NotSentError):
    """HTTP 503, or no connection could be made; the request never reached the gateway's queue."""

    outcome = "nothing was queued; the gateway is unavailable"
    transient = True


class DeliveryUnknownError(GatewayError):
    """The request reached the gateway but its answer was lost or unreadable: the message may be queued.

    There is no idempotency key in the protocol, so sending again may deliver the card twice.
    """

    outcome = "the message MAY HAVE BEEN QUEUED; check the chat before sending it again"


class FanOutError(ChatApiError):
    """Some sends of a batch failed. ``outcomes`` holds, in recipient order, each send's result or error;
    ``failures`` and ``queued`` split them by recipient chat."""

    def __init__(self, outcomes: Sequence[Any], sends: Sequence[ApiRequest]) -> None:
        self.outcomes = list(outcomes)
        by_chat = dict(zip((recipient_chat_id(send) for send in sends), self.outcomes, strict=True))
        self.failures = {chat: outcome for chat, outcome in by_chat.items() if isinstance(outcome, ChatApiError)}
        self.queued = {chat: outcome for chat, outcome in by_chat.items() if chat not in self.failures}
        shown = "; ".join(f"{recipient}: {error}" for recipient, error in list(self.failures.items())[:3])
        more = f"; and {len(self.failures) - 3} more" if len(self.failures) > 3 else ""
        super().__init__(f"{len(self.failures)} of {len(self.outcomes)} sends failed: {shown}{more}")


# --------------------------------------------------------------------------------------------------
# Values on the wire
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One call to the gateway, without the token: the transport adds ``?token=`` itself."""

    method: Literal["GET", "POST"]
    endpoint: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None

    @property
    def has_side_effect(self) -> bool:
        """Whether a lost answer leaves the gateway's state unknown (a POST may have queued a message)."""
        return self.method == "POST"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """What the transport read: status, headers with lower-case names, and the body with the token scrubbed."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class SendResult:
    """The gateway's answer to an accepted send: the message is in the instance's outbound queue.

    ``sent`` is always true here (a refusal raises); it means *queued*, not delivered.
    """

    id: str
    sent: bool
    message: str
    queue_number: int | None


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Where and how to reach one instance. The token is left out of ``repr()``."""

    api_url: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES

    def replace(self, **changes: Any) -> GatewaySettings:
        """A copy with some settings changed (a hook's own timeout, say)."""
        return dataclasses.replace(self, **changes)

    def url(self, endpoint: str) -> str:
        """The endpoint's URL without the token; safe to log."""
        return f"{self.api_url}/{endpoint}"

    def http_arguments(self, request: ApiRequest) -> dict[str, Any]:
        """What an HTTP client (``requests`` or ``httpx``) needs to make ``request``, token included."""
        return {
            "method": request.method,
            "url": self.url(request.endpoint),
            "params": {**request.params, "token": self.token},
            "json": request.json,
        }


# --------------------------------------------------------------------------------------------------
# Normalisation of what a DAG author passes
# --------------------------------------------------------------------------------------------------


def normalize_phone(value: Any, *, field: str = "phone") -> str:
    """Return a phone number as the gateway wants it: digits only, country code first.

    ``"+7 (900) 111-11-11"``, ``"79001111111"`` and ``79001111111`` all give ``"79001111111"``.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInputError(field, value, "a phone number must be a string or an int")
    if isinstance(value, int) and value <= 0:
        raise InvalidInputError(field, value, "a phone number must be positive")
    return _phone_digits(str(value), field, value)


def _phone_digits(text: str, field: str, value: Any) -> str:
    """The digits of a written phone number; errors name ``value``, the whole of what was given."""
    number = _PHONE_SEPARATORS.sub("", text)
    if not number:
        raise InvalidInputError(field, value, "is empty")
    if number.startswith("+"):
        number = number[1:]
    elif number.startswith("00"):
        number = number[2:]  # the international call prefix, as dialled in much of the world
    if not _DIGITS.fullmatch(number):
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
        suffix = text[-len(_PRIVATE_SUFFIX) :].lower()
        if suffix == _GROUP_SUFFIX:
            raise InvalidInputError(field, value, "is a group chat id; a contact is a person's id (digits@c.us)")
        if suffix == _PRIVATE_SUFFIX:
            return _phone_digits(text[: -len(_PRIVATE_SUFFIX)], field, value) + _PRIVATE_SUFFIX
        if "@" in text:
            raise InvalidInputError(field, value, "a contact id ends in @c.us")
    return normalize_phone(value, field=field) + _PRIVATE_SUFFIX


def normalize_contact_ids(value: Any, *, field: str = "contact_ids") -> tuple[str, ...]:
    """Return the contacts to send as unique ``digits@c.us`` ids, in the order given.

    Takes whatever an upstream task or a template produces: a list, tuple or set; a single id or an int;
    a rendered Python or JSON list such as ``"['79001111111', '79002222222@c.us']"``; or a
    comma-separated string.
    """
    items = _listed_items(value, field, "contact")
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
        chat = target.get("chat_id") or f"{target['phone']}{_PRIVATE_SUFFIX}"
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
        items = list(value)
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise InvalidInputError(
                f"{field}[{index}]", item, f"a {noun} is a string or an int, not {type(item).__name__}"
            )
    if not items:
        raise InvalidInputError(field, value, f"is empty; give at least one {noun}")
    return items


def _split_text(text: str, field: str) -> list[Any]:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[({":
        # A list rendered by a non-native Jinja template arrives as its repr (or as JSON).
        parsed = _parse_literal(stripped)
        if not isinstance(parsed, (list, tuple, set, frozenset)):
            raise InvalidInputError(field, text, "looks like a rendered list but is not one")
        return list(parsed)
    parts = [part.strip() for part in stripped.split(",")]
    for index, part in enumerate(parts):
        if not part:
            raise InvalidInputError(f"{field}[{index}]", part, f"is empty in the comma-separated {text!r}")
    return parts


def _parse_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
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
    suffix = text[-len(_PRIVATE_SUFFIX) :].lower()
    if suffix == _PRIVATE_SUFFIX:
        return _phone_digits(text[: -len(_PRIVATE_SUFFIX)], field, value) + _PRIVATE_SUFFIX
    if suffix == _GROUP_SUFFIX:
        group = text[: -len(_GROUP_SUFFIX)]
        if not _GROUP_ID.fullmatch(group):
            raise InvalidInputError(field, value, "a group id is '<number>-<timestamp>@g.us' or '<long number>@g.us'")
        return group + _GROUP_SUFFIX
    raise InvalidInputError(
        field, value, "a chat id ends in @c.us (private) or @g.us (group); for a bare number use phone="
    )


def normalize_quoted_message_id(value: Any, *, field: str = "quoted_message_id") -> str:
    """Return the id of the message to reply to, such as ``false_17472822486@c.us_DF38E6A25B42CC8C``."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _QUOTED_MESSAGE_ID.fullmatch(text):
        raise InvalidInputError(field, value, "a message id looks like 'false_17472822486@c.us_DF38E6A25B42CC8C'")
    return text


# --------------------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------------------


def resolve_api_url(
    host: str | None, instance_id: str | None = None, *, port: int | None = None, conn_id: str = "chatapi"
) -> str:
    """Return the instance's API URL from a connection's host, login (instance id) and port.

    An empty host means the documented default; a host without a scheme means https; an explicit
    ``http://127.0.0.1:8080`` is kept. A login of ``123456`` appends ``/instance123456`` unless the host
    already ends in that instance.
    """
    raw = (host or "").strip() or DEFAULT_API_URL
    with_scheme = raw if "://" in raw else f"https://{raw}"
    parts = urlsplit(with_scheme)
    shown = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))

    def bad_host(problem: str) -> ConnectionConfigError:
        # Never echo a query string or user info: a token pasted there would land in the log.
        return ConnectionConfigError(f"connection {conn_id!r} host", shown, problem)

    if parts.scheme not in ("http", "https"):
        raise bad_host("the API URL must start with https:// or http://")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise bad_host("the API URL must not carry a query, fragment or user info; put the token in the password")
    try:
        explicit_port = parts.port
    except ValueError:
        raise bad_host("the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise bad_host("the API URL has no host name")
    netloc = parts.netloc
    if port and explicit_port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    login = (instance_id or "").strip()
    if login:
        number = login[len("instance") :] if login.lower().startswith("instance") else login
        if not _DIGITS.fullmatch(number):
            raise ConnectionConfigError(f"connection {conn_id!r} login", login, "the instance id is a number")
        in_path = _INSTANCE_PATH.search(path)
        if in_path and in_path.group(1) != number:
            raise ConnectionConfigError(
                f"connection {conn_id!r} login",
                login,
                f"differs from the instance in the API URL {shown!r}; leave the login empty",
            )
        if not in_path:
            path = f"{path}/instance{number}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def settings_from_connection(
    *,
    conn_id: str,
    host: str | None,
    login: str | None,
    password: str | None,
    port: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> GatewaySettings:
    """Read a ``chatapi`` connection's fields into settings; raise :class:`ConnectionConfigError` if unusable."""
    token = (password or "").strip()
    if not token:
        raise ConnectionConfigError(f"connection {conn_id!r} password", None, "the instance's API token is missing")
    extra = extra or {}
    return GatewaySettings(
        api_url=resolve_api_url(host, login, port=port, conn_id=conn_id),
        token=token,
        timeout=_extra_number(extra, "timeout", conn_id, DEFAULT_TIMEOUT, float, minimum=0.001),
        max_retries=_extra_number(extra, "max_retries", conn_id, DEFAULT_MAX_RETRIES, int, minimum=0),
    )


def _extra_number(
    extra: Mapping[str, Any], name: str, conn_id: str, default: Any, kind: type, *, minimum: float
) -> Any:
    # Forms before Airflow 2.3 stored custom fields as extra__<conn_type>__<name>.
    raw = extra.get(name, extra.get(f"extra__chatapi__{name}"))
    if raw is None or raw == "":
        return default
    try:
        number = kind(raw)
    except (TypeError, ValueError):
        number = None
    if isinstance(raw, bool) or number is None or number < minimum or (kind is int and number != float(raw)):
        raise ConnectionConfigError(
            f"connection {conn_id!r} extra {name!r}", raw, f"must be a {kind.__name__} of at least {minimum}"
        )
    return number


# --------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------


def build_send_contact(
    contact_ids: Any,
    *,
    phone: Any = None,
    chat_id: Any = None,
    quoted_message_id: Any = None,
) -> ApiRequest:
    """Validate and normalise a send, and return the ``sendContact`` request for it."""
    if (phone is None) == (chat_id is None):
        given = "both" if phone is not None else "neither"
        raise InvalidInputError(
            "phone/chat_id", {"phone": phone, "chat_id": chat_id}, f"give exactly one of them, got {given}"
        )
    body: dict[str, Any] = {}
    if phone is not None:
        body["phone"] = normalize_phone(phone)
    else:
        body["chatId"] = normalize_chat_id(chat_id)
    body["contactId"] = list(normalize_contact_ids(contact_ids))
    if quoted_message_id is not None:
        body["quotedMsgId"] = normalize_quoted_message_id(quoted_message_id)
    return ApiRequest("POST", "sendContact", json=body)


def build_send_to_many(contact_ids: Any, recipients: Any, *, quoted_message_id: Any = None) -> list[ApiRequest]:
    """One ``sendContact`` request per recipient, in order; every argument is validated first."""
    contacts = normalize_contact_ids(contact_ids)
    return [
        build_send_contact(contacts, quoted_message_id=quoted_message_id, **target)
        for target in normalize_recipients(recipients)
    ]


def fan_out_failure(outcomes: Sequence[Any], sends: Sequence[ApiRequest]) -> FanOutError | None:
    """The error for a batch whose ``outcomes`` (one per send, in order) hold any error; None if none do."""
    if any(isinstance(outcome, ChatApiError) for outcome in outcomes):
        return FanOutError(outcomes, sends)
    return None


def recipient_chat_id(send: ApiRequest) -> str:
    """The chat a ``sendContact`` request goes to: its ``chatId``, or the phone's private chat."""
    body = send.json or {}
    return body["chatId"] if "chatId" in body else f"{body['phone']}{_PRIVATE_SUFFIX}"


def build_message_history(chat_id: str, *, since: float, limit: int = 100) -> ApiRequest:
    """The chat's messages since ``since`` (unix seconds, less :data:`CLOCK_SKEW`): where a sent card shows."""
    min_time = max(0, int(since - CLOCK_SKEW))
    return ApiRequest("GET", "messages", params={"chatId": chat_id, "min_time": str(min_time), "limit": str(limit)})


def build_message_queue() -> ApiRequest:
    """The instance's outbound queue: where a card accepted but not yet sent waits."""
    return ApiRequest("GET", "showMessagesQueue")


def build_status() -> ApiRequest:
    """The side-effect-free probe: ``no_wakeup`` keeps a sleeping instance asleep."""
    return ApiRequest("GET", "status", params={"no_wakeup": "true"})


# --------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------


def parse_send_response(response: ApiResponse, endpoint: str = "sendContact") -> SendResult:
    """Return the queued message, or raise the error that says whether it may have been queued."""
    payload = _checked_payload(response, endpoint, has_side_effect=True)
    sent = payload.get("sent")
    message = str(payload.get("message") or "")
    if sent is False:
        raise RejectedError(endpoint, _quote(message or "sent: false"), status_code=response.status_code)
    message_id = payload.get("id")
    if sent is not True or not isinstance(message_id, str) or not message_id:
        raise DeliveryUnknownError(
            endpoint,
            f"answered without 'sent: true' and a message id: {_snippet(response)}",
            status_code=response.status_code,
        )
    queue_number = payload.get("queueNumber")
    return SendResult(
        id=message_id,
        sent=True,
        message=message,
        queue_number=queue_number if isinstance(queue_number, int) and not isinstance(queue_number, bool) else None,
    )


_ACCOUNT_STATUSES = {
    "authenticated": "the instance is linked to its phone and delivers messages",
    "got qr code": "the phone is not linked yet: scan the QR code in the gateway's cabinet; messages queue until then",
    "loading": "the instance is starting; messages queue until it is up",
    "init": "the instance is starting; messages queue until it is up",
    "not_paid": "the instance is not paid for; messages are not delivered",
}


def describe_account_status(status: str) -> tuple[bool, str]:
    """Whether an instance in this ``accountStatus`` delivers messages, and what the status means."""
    meaning = _ACCOUNT_STATUSES.get(status, "an account status this provider does not know")
    return status == "authenticated", f"Token accepted; account status {status!r}: {meaning}."


def parse_status_response(response: ApiResponse) -> str:
    """Return the instance's ``accountStatus`` (``authenticated``, ``got qr code``, ...)."""
    payload = _checked_payload(response, "status", has_side_effect=False)
    status = payload.get("accountStatus")
    if not isinstance(status, str) or not status:
        raise GatewayError("status", f"answered without an accountStatus: {_snippet(response)}", status_code=200)
    return status


def parse_message_history(response: ApiResponse) -> list[dict[str, Any]]:
    """The ``messages`` list of a ``messages`` answer."""
    return _object_list(_checked_payload(response, "messages", has_side_effect=False), "messages", "messages")


def parse_message_queue(response: ApiResponse) -> list[dict[str, Any]]:
    """The ``first100`` list of a ``showMessagesQueue`` answer."""
    return _object_list(
        _checked_payload(response, "showMessagesQueue", has_side_effect=False), "first100", "showMessagesQueue"
    )


def _object_list(payload: dict[str, Any], key: str, endpoint: str) -> list[dict[str, Any]]:
    entries = payload.get(key, [])
    if not isinstance(entries, list):
        raise GatewayError(endpoint, f"answered with {key!r} that is not a list", status_code=200)
    return [entry for entry in entries if isinstance(entry, dict)]


def find_contact_card(send: ApiRequest, entries: Iterable[Mapping[str, Any]], *, since: float) -> str | None:
    """The id of the first message among ``entries`` that is the card ``send`` would have queued.

    ``entries`` come from the chat's history or the outbound queue. A match is an outgoing contact card
    (``vcard`` for one contact, ``multi_vcard`` for several) to the same chat, no older than ``since``
    less :data:`CLOCK_SKEW`, whose text names every contact's number. A field the gateway leaves out
    (the queue may carry no chat id or time) is not held against the entry.
    """
    body = send.json or {}
    chat_id = recipient_chat_id(send)
    numbers = [contact.removesuffix(_PRIVATE_SUFFIX) for contact in body.get("contactId", [])]
    card_type = "vcard" if len(numbers) == 1 else "multi_vcard"
    for entry in entries:
        entry_chat = entry.get("chatId") or (entry.get("metadata") or {}).get("chatId")
        entry_time = entry.get("time", entry.get("last_try"))
        text = entry.get("body")
        if (
            entry.get("type") == card_type
            and entry.get("fromMe", True) is True
            and entry_chat in (None, chat_id)
            and (not isinstance(entry_time, (int, float)) or entry_time >= since - CLOCK_SKEW)
            and (not isinstance(text, str) or all(number in text for number in numbers))
            and isinstance(entry.get("id"), str)
        ):
            return entry["id"]
    return None


def _checked_payload(response: ApiResponse, endpoint: str, *, has_side_effect: bool) -> dict[str, Any]:
    """Return the JSON object of a successful answer; raise the classified error for any other."""
    status = response.status_code
    payload = _json_object(response.body)
    if 200 <= status < 300 and payload is not None and "error" not in payload:
        return payload
    said = _gateway_said(payload, response)  # only a failure needs the gateway's words
    if status in (401, 403):
        raise AuthenticationError(endpoint, said, status_code=status)
    if status in (429, 503):
        error_class = RateLimitedError if status == 429 else GatewayUnavailableError
        raise error_class(
            endpoint, said, status_code=status, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    if 400 <= status < 500:
        raise RejectedError(endpoint, said, status_code=status)
    unknown = DeliveryUnknownError if has_side_effect else GatewayError
    if not 200 <= status < 300:
        raise unknown(endpoint, said, status_code=status)
    if payload is None:
        raise unknown(endpoint, f"answered with a body that is not a JSON object: {said}", status_code=status)
    raise RejectedError(endpoint, said, status_code=status)  # a 2xx whose body has an "error"


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _gateway_said(payload: dict[str, Any] | None, response: ApiResponse) -> str:
    if payload is not None:
        for key in ("error", "message"):
            if payload.get(key):
                return _quote(str(payload[key]))
    return _snippet(response)


def _quote(text: str) -> str:
    return f"the gateway said {_shorten(text)!r}"


def _snippet(response: ApiResponse) -> str:
    if not response.body.strip():
        return "an empty body"
    text = response.body.decode("utf-8", errors="replace")
    if "html" in response.headers.get("content-type", "") or text.lstrip().startswith("<"):
        text = re.sub(r"<[^>]*>", " ", text)  # a proxy's error page: keep its words, not its markup
    return f"body {_shorten(text)!r}"


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_LENGTH else flat[: _SNIPPET_LENGTH - 1] + "…"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# --------------------------------------------------------------------------------------------------
# Plans: exchanges as generators, driven by a sync or an async transport
# --------------------------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request for a transport to make, and how to read its answer (``parse`` raises on failure)."""

    request: ApiRequest
    parse: Callable[[ApiResponse], T]


Plan = Generator[Call[Any], Any, T]
"""An exchange with the gateway as a generator: it yields each :class:`Call`, is sent the call's parsed
answer or has its error thrown in, and returns its result. Plans do no I/O of their own, so the sync
and the async transport run the very same steps; see :class:`PlanSteps`."""


def send_plan(send: ApiRequest) -> Plan[SendResult]:
    """Send a card."""
    return (yield Call(send, parse_send_response))


def status_plan() -> Plan[str]:
    """Read the instance's ``accountStatus``."""
    return (yield Call(build_status(), parse_status_response))


def find_card_plan(send: ApiRequest, *, since: float) -> Plan[str | None]:
    """The id of a card matching ``send`` queued since ``since``: in the chat's history, then the queue."""
    history = yield Call(build_message_history(recipient_chat_id(send), since=since), parse_message_history)
    found = find_contact_card(send, history, since=since)
    if found is None:
        queue = yield Call(build_message_queue(), parse_message_queue)
        found = find_contact_card(send, queue, since=since)
    return found


class PlanSteps(Generic[T]):
    """Steps through a plan for a transport::

    steps = PlanSteps(plan)
    for call in steps:
        try:
            steps.answer(transport(call))
        except ChatApiError as error:
            steps.fail(error)
    return steps.result
    """

    def __init__(self, plan: Plan[T]) -> None:
        self._plan = plan
        self._resume: Callable[[], Call[Any]] = lambda: plan.send(None)
        self.result: T

    def __iter__(self) -> PlanSteps[T]:
        return self

    def __next__(self) -> Call[Any]:
        try:
            return self._resume()
        except StopIteration as done:
            self.result = done.value
            raise StopIteration from None

    def answer(self, value: Any) -> None:
        self._resume = lambda: self._plan.send(value)

    def fail(self, error: ChatApiError) -> None:
        self._resume = lambda: self._plan.throw(error)


# --------------------------------------------------------------------------------------------------
# Transport failures and secrets
# --------------------------------------------------------------------------------------------------


def connection_failed(request: ApiRequest, detail: str) -> GatewayUnavailableError:
    """The error for a request that never reached the gateway (refused, DNS, TLS, connect timeout)."""
    return GatewayUnavailableError(request.endpoint, f"could not connect: {detail}")


def response_lost(request: ApiRequest, detail: str) -> GatewayError:
    """The error for a request that was sent but whose answer never came (read timeout, reset)."""
    error_class = DeliveryUnknownError if request.has_side_effect else GatewayUnavailableError
    return error_class(request.endpoint, f"sent, but no answer arrived: {detail}")


def read_response(status_code: int, headers: Mapping[str, str], body: bytes, *, secret: str) -> ApiResponse:
    """Wrap what a transport read; the token is scrubbed from the body before anything parses it.

    Some gateway versions echo the token in their error text, which would otherwise reach the log.
    """
    return ApiResponse(
        status_code=status_code,
        headers={name.lower(): value for name, value in headers.items()},
        body=scrub_secret(body.decode("utf-8", errors="replace"), secret).encode(),
    )


def secret_forms(secret: str) -> set[str]:
    """The secret as it may appear in text: raw, or URL-encoded as it travels in a query string."""
    return {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)} if secret else set()


def scrub_secret(text: str, secret: str) -> str:
    """Replace every form of the secret in ``text`` with ``***``."""
    for form in sorted(secret_forms(secret), key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text
