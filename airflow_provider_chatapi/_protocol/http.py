"""One exchange with the gateway as plain values, with no I/O: the request, the answer, what a failure means.

A request never holds the token (the transport adds it), and whatever is taken from an answer to be shown
(an error, a log line, a result) goes through :meth:`ApiResponse.shown`, which scrubs it: gateways echo the
token in their error texts (1msg's 401 always does).

Every failure is classified here, once for both transports and both dialects: certainly not queued
(:class:`~airflow_provider_chatapi.exceptions.NotSentError` and its subclasses), possibly queued
(:class:`~airflow_provider_chatapi.exceptions.DeliveryUnknownError`), or a read that failed
(:class:`~airflow_provider_chatapi.exceptions.GatewayError`).

Exchanges of several requests are generator plans (:data:`Plan`): a plan yields each :class:`Call`, is
sent the parsed answer or has the error thrown in, and returns its result, so the hook's ``requests`` and
``httpx`` transports run the very same steps.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import quote, quote_plus

from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    GatewayError,
    GatewayUnavailableError,
    RateLimitedError,
    RejectedError,
)

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "REDACTED",
    "ApiRequest",
    "ApiResponse",
    "Call",
    "Plan",
    "checked_payload",
    "clock_offset",
    "connection_failed",
    "object_list",
    "parse_retry_after",
    "quote_gateway",
    "response_lost",
    "scrub_secret",
    "secret_forms",
    "snippet",
    "unreadable_send",
]

T = TypeVar("T")
REDACTED = "***"
_SNIPPET_LENGTH = 200


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
    """What the transport read: status, headers that answer to lower-case names, the body as it came, and
    the token that :meth:`shown` keeps out of sight."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    secret: str = field(default="", repr=False)

    def shown(self, text: str) -> str:
        """``text`` from this answer, fit to show: the token scrubbed (as :func:`scrub_secret` scrubs a
        transport's error text)."""
        for form in secret_forms(self.secret):
            text = text.replace(form, REDACTED)
        return text


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request for a transport to make, and how to read its answer (``parse`` raises on failure)."""

    request: ApiRequest
    parse: Callable[[ApiResponse], T]


Plan = Generator[Call[Any], Any, T]
"""An exchange with the gateway as a generator: it yields each :class:`Call`, is sent the call's parsed
answer or has its error thrown in, and returns its result."""


@functools.lru_cache(maxsize=16)
def secret_forms(secret: str) -> tuple[str, ...]:
    """The secret as it may appear in text, raw or URL-encoded as it travels in a query string; longest first."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)} if secret else set()
    return tuple(sorted(forms, key=len, reverse=True))


def scrub_secret(text: str, secret: str) -> str:
    """Replace every form of the secret in ``text`` with ``***``."""
    for form in secret_forms(secret):
        text = text.replace(form, REDACTED)
    return text


# ---- reading answers ---------------------------------------------------------------------------


def checked_payload(response: ApiResponse, endpoint: str, *, has_side_effect: bool) -> dict[str, Any]:
    """Return the JSON object of a successful answer; raise the classified error for any other."""
    status = response.status_code
    try:
        payload = json.loads(response.body)
    except ValueError:
        payload = None
    payload = payload if isinstance(payload, dict) else None
    success = 200 <= status < 300
    # An "error" of null or "" beside a success says there was none (some gateways always send the field).
    if success and payload is not None and not payload.get("error"):
        return payload
    said = _gateway_said(payload, response)  # only a failure needs the gateway's words
    if status in (401, 403):
        raise AuthenticationError(endpoint, said, status_code=status)
    if status in (429, 503):
        error_class = RateLimitedError if status == 429 else GatewayUnavailableError
        raise error_class(
            endpoint, said, status_code=status, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    if 300 <= status < 400:
        # Neither transport follows a redirect: re-sending a POST elsewhere could queue the card twice,
        # and a gateway that redirects has not processed the request.
        where = response.shown(response.headers.get("location", "nowhere"))  # a redirect keeps the token
        raise RejectedError(
            endpoint,
            f"the gateway redirects to {where!r}",
            status_code=status,
            outcome="nothing was queued; the API URL is not the gateway's own (http for https, a moved host?): "
            "fix the connection's host",
        )
    if 400 <= status < 500 or (success and payload is not None):
        raise RejectedError(endpoint, said, status_code=status)  # a 4xx, or a 2xx whose body has an "error"
    if success:
        said = f"answered with a body that is not a JSON object: {said}"
    unknown = DeliveryUnknownError if has_side_effect else GatewayError
    raise unknown(endpoint, said, status_code=status)


def unreadable_send(response: ApiResponse) -> DeliveryUnknownError:
    """The error for a 2xx send answer that is neither an acceptance nor a refusal: it may hide a queued card."""
    said = f"answered without 'sent: true' and a message id: {snippet(response)}"
    return DeliveryUnknownError("sendContact", said, status_code=response.status_code)


def object_list(payload: Mapping[str, Any], key: str, endpoint: str) -> list[dict[str, Any]]:
    """The objects in a list field of an answer (``messages``, ``first100``, ``hooks``)."""
    entries = payload.get(key, [])
    if not isinstance(entries, list):
        raise GatewayError(endpoint, f"answered with {key!r} that is not a list", status_code=200)
    return [entry for entry in entries if isinstance(entry, dict)]


def _gateway_said(payload: Mapping[str, Any] | None, response: ApiResponse) -> str:
    """What the gateway said about a failure: its ``error`` or ``message`` text, else a snippet of the body.

    ``error`` may also be an object, as in the WhatsApp Business API errors 1msg passes on: its
    ``message``, ``error_user_msg`` and ``code`` are kept.
    """
    for key in ("error", "message"):
        said = (payload or {}).get(key)
        if isinstance(said, Mapping):
            words = [str(said[k]) for k in ("message", "error_user_msg") if said.get(k)]
            code = f" (code {said['code']})" if said.get("code") is not None else ""
            said = "; ".join(words) + code
        if said:
            return quote_gateway(str(said), response)
    return snippet(response)


def quote_gateway(text: str, response: ApiResponse) -> str:
    """What the gateway said in ``response``, quoted and shortened, the token scrubbed."""
    return f"the gateway said {_shorten(response.shown(text))!r}"


def snippet(response: ApiResponse) -> str:
    """A short view of ``response``'s body for an error, the token scrubbed."""
    if not response.body.strip():
        return "an empty body"
    text = response.shown(response.body.decode("utf-8", errors="replace"))
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
    if value.isascii() and value.isdigit():  # str.isdigit() alone takes "²", which float() refuses
        return float(value)
    when = _http_date(value)
    return None if when is None else max(0.0, when.timestamp() - (time.time() if now is None else now))


def clock_offset(response: ApiResponse) -> float | None:
    """Seconds to add to our clock to read the gateway's, from an answer just received; None without a
    readable ``Date`` (RFC 9110 requires one of a server with a clock).

    ``Date`` is truncated to the second and stamped before the answer left, so the result is at most the
    true offset and less than a second (plus the answer's travel) below it: an intent placed with it is
    never later than the truth, and our own card is never excluded.
    """
    stamped = _http_date(response.headers.get("date"))
    if stamped is None or stamped.tzinfo is None:  # an obsolete form without a zone: RFC 9110 says it is GMT
        return None
    return stamped.timestamp() - time.time()


def _http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def connection_failed(request: ApiRequest, detail: str) -> GatewayUnavailableError:
    """The error for a request that never reached the gateway (refused, DNS, TLS, connect timeout)."""
    return GatewayUnavailableError(request.endpoint, f"could not connect: {detail}")


def response_lost(request: ApiRequest, detail: str) -> GatewayError:
    """The error for a request that was sent but whose answer never came (read timeout, reset)."""
    error_class = DeliveryUnknownError if request.has_side_effect else GatewayUnavailableError
    return error_class(request.endpoint, f"sent, but no answer arrived: {detail}")
