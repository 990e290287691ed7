"""What every dialect sends and reads, with no I/O: requests, answers, plans, failure classes, secrets.

An exchange with the gateway is a generator *plan* (:data:`Plan`): it yields each :class:`Call` (a
request and how to read its answer), is sent the parsed answer or has the error thrown in, and returns
its result. The hook drives plans with ``requests`` or with ``httpx``; both transports are thin and share
every rule written here and in the dialect modules.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import quote, quote_plus

from airflow_provider_chatapi.protocol.errors import (
    AuthenticationError,
    ChatApiError,
    DeliveryUnknownError,
    GatewayError,
    GatewayUnavailableError,
    RateLimitedError,
    RejectedError,
)

if TYPE_CHECKING:
    from airflow_provider_chatapi.protocol.dialect import Dialect

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

T = TypeVar("T")


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
    """What the transport read: status, headers that answer to lower-case names, and the body as it came.

    Gateways echo the token in their error texts (1msg's 401 always does), so whatever is taken from an
    answer to be shown (an error, a log line, a result) goes through :meth:`shown`, which scrubs it.
    """

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    secret: str = field(default="", repr=False)

    def shown(self, text: str) -> str:
        """``text`` from this answer, fit to show: the token scrubbed."""
        return scrub_secret(text, self.secret)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The gateway's answer to an accepted send: the message is in the instance's outbound queue.

    ``sent`` true means *queued*, not delivered (a refusal raises).
    """

    id: str
    sent: bool
    message: str
    queue_number: int | None
    job_id: str | None = None
    """1msg only: set when 1msg took the send as a queued job (``sent: false`` with a ``jobId``). Such a
    send has no message id yet, so ``id`` holds the job id: the one handle there is. It is queued, and
    never to be sent again."""


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Where and how to reach one instance. The token is left out of ``repr()``."""

    api_url: str
    token: str = field(repr=False)
    dialect: Dialect
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
# Answers
# --------------------------------------------------------------------------------------------------


def read_response(status_code: int, headers: Mapping[str, str], body: bytes, *, secret: str) -> ApiResponse:
    """Wrap what a transport read, with the secret that :meth:`ApiResponse.shown` keeps out of sight."""
    if type(headers) is dict:  # requests' and httpx's headers already answer to any case
        headers = {name.lower(): value for name, value in headers.items()}
    return ApiResponse(status_code=status_code, headers=headers, body=body, secret=secret)


def checked_payload(response: ApiResponse, endpoint: str, *, has_side_effect: bool) -> dict[str, Any]:
    """Return the JSON object of a successful answer; raise the classified error for any other."""
    status = response.status_code
    payload = json_object(response.body)
    if 200 <= status < 300 and payload is not None and "error" not in payload:
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


def unreadable_send(response: ApiResponse, endpoint: str = "sendContact") -> DeliveryUnknownError:
    """The error for a 2xx send answer that is neither an acceptance nor a refusal: it may hide a queued card."""
    return DeliveryUnknownError(
        endpoint,
        f"answered without 'sent: true' and a message id: {snippet(response)}",
        status_code=response.status_code,
    )


def status_word(response: ApiResponse, key: str) -> str:
    """The status word under ``key`` of a ``status`` answer."""
    status = checked_payload(response, "status", has_side_effect=False).get(key)
    if not isinstance(status, str) or not status:
        raise GatewayError("status", f"answered without {key!r}: {snippet(response)}", status_code=response.status_code)
    return response.shown(status)


def history_request(chat_id: str, *, since: float, limit: int) -> ApiRequest:
    """A chat's ``messages`` since ``since`` (unix seconds, less :data:`CLOCK_SKEW`): where a sent card shows."""
    min_time = max(0, int(since - CLOCK_SKEW))
    return ApiRequest("GET", "messages", params={"chatId": chat_id, "min_time": str(min_time), "limit": str(limit)})


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


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request for a transport to make, and how to read its answer (``parse`` raises on failure)."""

    request: ApiRequest
    parse: Callable[[ApiResponse], T]


Plan = Generator[Call[Any], Any, T]
"""An exchange with the gateway as a generator: it yields each :class:`Call`, is sent the call's parsed
answer or has its error thrown in, and returns its result. Plans do no I/O of their own, so the sync
and the async transport run the very same steps; see :class:`PlanSteps`."""


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
