"""The hook's two thin transports, ``requests`` and ``httpx``, and the one retry policy they share.

Each transport only moves bytes: it makes the request the protocol built, turns what its library raised
into the protocol's classification (never sent, or sent with the answer lost), and hands the answer to
the call's parser. The token travels in every URL, so nothing either library says is shown unscrubbed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import requests
import tenacity
from airflow.providers.common.compat.sdk import redact
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, SSLError

from airflow_provider_chatapi._protocol.answers import connection_failed, response_lost
from airflow_provider_chatapi._protocol.http import read_response
from airflow_provider_chatapi._protocol.secrets import scrub_secret
from airflow_provider_chatapi.exceptions import ChatApiError, NotSentError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_provider_chatapi._protocol.delivery import Log
    from airflow_provider_chatapi._protocol.plans import Call
    from airflow_provider_chatapi._protocol.settings import GatewaySettings

T = TypeVar("T")

MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` waited out inside one call; a longer one is left to Airflow's task retries."""
BACKOFF_FACTOR = 0.5
"""Seconds before the first retry when the gateway gives no ``Retry-After``; doubles after each."""
MAX_BACKOFF = 10.0
"""Longest wait between two retries of one call."""
# httpx errors raised before the request could be written: nothing can have been queued.
_HTTPX_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class _MaskedRequestLog(logging.Filter):
    """httpx logs every request with its URL, token and all, as an ``httpx.URL`` argument; Airflow 2.11 and
    3.0 mask only text arguments, so the record is formatted here and masked as text. It logs them at INFO,
    a line per request (10,000 for a fan-out to 10,000): they become DEBUG, as ``requests`` logs its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = redact(record.getMessage()), ()
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


_MASKED_REQUEST_LOG = _MaskedRequestLog()


def new_async_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """An ``httpx`` client for one event loop, whose request log lines are masked."""
    logging.getLogger("httpx").addFilter(_MASKED_REQUEST_LOG)  # once: a filter already there is not added again
    return httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False)


# ---- retrying ----------------------------------------------------------------------------------


def retry_in_place(error: BaseException) -> bool:
    """Whether a failed call may be made again at once: only when the gateway certainly queued nothing.

    A read timeout, a reset after the request was written or a 500/502/504 may hide a queued message,
    and the protocol has no idempotency key, so re-sending those could deliver the card twice.
    """
    if not isinstance(error, NotSentError) or not error.transient:
        return False
    return error.retry_after is None or error.retry_after <= MAX_RETRY_AFTER


def _wait(state: tenacity.RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, NotSentError) and error.retry_after is not None:
        return error.retry_after
    return min(BACKOFF_FACTOR * 2 ** (state.attempt_number - 1), MAX_BACKOFF)


def retry_policy(max_retries: int, log: Log) -> dict[str, Any]:
    """tenacity's arguments for retrying a call: connect failures, 429 and 503 only, honouring ``Retry-After``."""

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s; retrying in %.1f s (attempt %d)", error, wait, state.attempt_number + 1)

    return {
        "retry": tenacity.retry_if_exception(retry_in_place),
        "stop": tenacity.stop_after_attempt(max_retries + 1),
        "wait": _wait,
        "reraise": True,
        "before_sleep": log_retry,
    }


def replaying(first: ChatApiError, attempt: Callable[..., T]) -> Callable[..., T]:
    """``attempt`` for tenacity to retry, whose first call re-raises the failure already met: most calls
    succeed at once, so the retry machinery is entered only after a retryable failure."""
    pending = [first]

    def call(*args: Any) -> T:
        if pending:
            raise pending.pop()
        return attempt(*args)

    return call


def areplaying(first: ChatApiError, attempt: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """:func:`replaying` for a coroutine function."""
    pending = [first]

    async def call(*args: Any) -> T:
        if pending:
            raise pending.pop()
        return await attempt(*args)

    return call


# ---- the transports ----------------------------------------------------------------------------


def call_with_requests(session: requests.Session, settings: GatewaySettings, call: Call[T]) -> T:
    """Make one call over a ``requests`` session, redirects not followed."""
    try:
        response = session.request(
            **settings.http_arguments(call.request), timeout=settings.timeout, allow_redirects=False
        )
    except requests.RequestException as error:
        # requests puts the full URL, token included, in its messages: scrub it, and drop the original
        # from the traceback (``from None``) so that it cannot be printed either.
        detail = scrub_secret(_describe_requests(error), settings.token)
        failure = connection_failed if _never_sent(error) else response_lost
        raise failure(call.request, detail) from None
    return call.parse(read_response(response.status_code, response.headers, response.content, secret=settings.token))


async def call_with_httpx(client: httpx.AsyncClient, settings: GatewaySettings, call: Call[T]) -> T:
    """Make one call over an ``httpx`` client (built with redirects off)."""
    try:
        response = await client.request(**settings.http_arguments(call.request))
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        detail = scrub_secret(_describe_httpx(error), settings.token)
        failure = connection_failed if isinstance(error, _HTTPX_NEVER_SENT) else response_lost
        raise failure(call.request, detail) from None
    return call.parse(read_response(response.status_code, response.headers, response.content, secret=settings.token))


def _describe_requests(error: requests.RequestException) -> str:
    """The innermost cause: requests wraps urllib3's in a message about retries and the URL."""
    cause: BaseException = error
    if error.args and isinstance(error.args[0], MaxRetryError) and error.args[0].reason is not None:
        cause = error.args[0].reason
    return f"{type(cause).__name__}: {cause}"


def _describe_httpx(error: Exception) -> str:
    """httpx's errors often have no text of their own: name the socket error behind them, if any."""
    if isinstance(error, httpx.TimeoutException):
        return f"{type(error).__name__}: timed out"  # its causes speak of cancel scopes, not of the gateway
    cause: BaseException | None = error
    for _ in range(10):  # a bounded walk: chains of causes can loop
        if cause is None or (isinstance(cause, OSError) and str(cause)):
            break
        cause = cause.__cause__ or cause.__context__
    text = str(cause if cause is not None else error)
    return f"{type(error).__name__}: {text or 'no detail'}"


def _never_sent(error: requests.RequestException) -> bool:
    """Whether the request certainly never reached the gateway (so nothing can have been queued)."""
    if isinstance(error, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0].reason if error.args and isinstance(error.args[0], MaxRetryError) else None
        # urllib3's NewConnectionError (refused, DNS failure) is a ConnectTimeoutError.
        return isinstance(reason, (ConnectTimeoutError, SSLError))
    # Timeouts and broken answers come after the request was written; anything else requests raises
    # (bad URL, bad header) comes before it.
    return not isinstance(
        error, (requests.Timeout, requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    )
