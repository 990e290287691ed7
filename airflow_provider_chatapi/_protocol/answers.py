"""Reading the gateway's answers, with no I/O: what a success holds, and what a failure means.

Every failure is classified here, once for both transports and both dialects: certainly not queued
(:class:`~airflow_provider_chatapi.exceptions.NotSentError` and its subclasses), possibly queued
(:class:`~airflow_provider_chatapi.exceptions.DeliveryUnknownError`), or a read that failed
(:class:`~airflow_provider_chatapi.exceptions.GatewayError`). Whatever is quoted from an answer has the
token scrubbed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    GatewayError,
    GatewayUnavailableError,
    RateLimitedError,
    RejectedError,
)

if TYPE_CHECKING:
    from airflow_provider_chatapi._protocol.http import ApiRequest, ApiResponse

__all__ = [
    "checked_payload",
    "connection_failed",
    "gateway_said",
    "json_object",
    "object_list",
    "parse_retry_after",
    "quote_gateway",
    "response_lost",
    "snippet",
    "status_word",
    "unreadable_send",
]

_SNIPPET_LENGTH = 200


def checked_payload(response: ApiResponse, endpoint: str, *, has_side_effect: bool) -> dict[str, Any]:
    """Return the JSON object of a successful answer; raise the classified error for any other."""
    status = response.status_code
    payload = json_object(response.body)
    # An "error" of null or "" beside a success says there was none (some gateways always send the field).
    if 200 <= status < 300 and payload is not None and not payload.get("error"):
        return payload
    said = gateway_said(payload, response)  # only a failure needs the gateway's words
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
    if 400 <= status < 500:
        raise RejectedError(endpoint, said, status_code=status)
    unknown = DeliveryUnknownError if has_side_effect else GatewayError
    if not 200 <= status < 300:
        raise unknown(endpoint, said, status_code=status)
    if payload is None:
        raise unknown(endpoint, f"answered with a body that is not a JSON object: {said}", status_code=status)
    raise RejectedError(endpoint, said, status_code=status)  # a 2xx whose body has an "error"


def unreadable_send(response: ApiResponse) -> DeliveryUnknownError:
    """The error for a 2xx send answer that is neither an acceptance nor a refusal: it may hide a queued card."""
    return DeliveryUnknownError(
        "sendContact",
        f"answered without 'sent: true' and a message id: {snippet(response)}",
        status_code=response.status_code,
    )


def status_word(response: ApiResponse, key: str) -> str:
    """The status word under ``key`` of a ``status`` answer."""
    status = checked_payload(response, "status", has_side_effect=False).get(key)
    if not isinstance(status, str) or not status:
        raise GatewayError("status", f"answered without {key!r}: {snippet(response)}", status_code=response.status_code)
    return response.shown(status)


def object_list(payload: Mapping[str, Any], key: str, endpoint: str) -> list[dict[str, Any]]:
    """The objects in a list field of an answer (``messages``, ``first100``)."""
    entries = payload.get(key, [])
    if not isinstance(entries, list):
        raise GatewayError(endpoint, f"answered with {key!r} that is not a list", status_code=200)
    return [entry for entry in entries if isinstance(entry, dict)]


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def gateway_said(payload: Mapping[str, Any] | None, response: ApiResponse) -> str:
    """What the gateway said about a failure: its ``error`` or ``message`` text, else a snippet of the body.

    ``error`` may also be an object, as in the WhatsApp Business API errors 1msg passes on: its
    ``message``, ``error_user_msg`` and ``code`` are kept.
    """
    if payload is not None:
        for key in ("error", "message"):
            said = payload.get(key)
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
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def connection_failed(request: ApiRequest, detail: str) -> GatewayUnavailableError:
    """The error for a request that never reached the gateway (refused, DNS, TLS, connect timeout)."""
    return GatewayUnavailableError(request.endpoint, f"could not connect: {detail}")


def response_lost(request: ApiRequest, detail: str) -> GatewayError:
    """The error for a request that was sent but whose answer never came (read timeout, reset)."""
    error_class = DeliveryUnknownError if request.has_side_effect else GatewayUnavailableError
    return error_class(request.endpoint, f"sent, but no answer arrived: {detail}")
