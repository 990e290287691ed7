"""The hook's two thin transports, ``requests`` and ``httpx``, the one retry policy they share, and batches
(paced, bounded, with their progress lines).

Each transport only moves bytes: it makes the request the protocol built, turns what its library raised
into the protocol's classification (never sent, or sent with the answer lost), and hands the answer to
the call's parser. The token travels in every URL, so nothing either library says is shown unscrubbed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import requests
import tenacity
from airflow.providers.common.compat.sdk import redact
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, SSLError

from airflow_provider_chatapi._protocol.http import ApiResponse, connection_failed, response_lost, scrub_secret
from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import GatewayError, NotSentError, RateLimitedError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from airflow_provider_chatapi._protocol.connection import GatewaySettings
    from airflow_provider_chatapi._protocol.http import ApiRequest, Call, Plan
    from airflow_provider_chatapi._protocol.record import Ledger, Log

__all__ = [
    "BACKOFF_FACTOR",
    "MAX_BACKOFF",
    "MAX_RETRY_AFTER",
    "Pacer",
    "Progress",
    "call_with_httpx",
    "call_with_requests",
    "new_async_client",
    "retry_in_place",
    "retry_policy",
    "run_batch",
]

T = TypeVar("T")

MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` waited out inside one call; a longer one is left to Airflow's task retries."""
BACKOFF_FACTOR = 0.5
"""Seconds before the first retry when the gateway gives no ``Retry-After``; doubles after each."""
MAX_BACKOFF = 10.0
"""Longest wait between two retries of one call."""
# httpx errors raised before the request could be written: nothing can have been queued.
_HTTPX_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _masked_request_line(record: logging.LogRecord) -> bool:
    """The filter of httpx's log. httpx logs every request with its URL, token and all, as an ``httpx.URL``
    argument; Airflow 2.11 and 3.0 mask only text arguments, so the record is formatted here and masked as
    text. It logs them at INFO, a line per request (10,000 for a fan-out to 10,000): they become DEBUG, as
    ``requests`` logs its own, and are dropped here unless the logger is enabled for DEBUG (the level was
    checked before this filter, and Airflow 2.11's task log handlers take any record that reaches them)."""
    if record.levelno == logging.INFO:
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
    if record.args:
        record.msg, record.args = redact(record.getMessage()), ()
    return True


def new_async_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """An ``httpx`` client for one event loop, whose request log lines are masked."""
    logging.getLogger("httpx").addFilter(_masked_request_line)  # once: a filter already there is not added again
    # No pool limit of httpx's own (100 connections, 20 kept alive): the batch's max_in_flight bounds the
    # requests in flight, and a lower pool cap would silently lower it.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False, limits=limits)


# ---- retrying ----------------------------------------------------------------------------------


def retry_in_place(error: BaseException) -> bool:
    """Whether a failed call may be made again at once: only when the gateway certainly queued nothing.

    A read timeout, a reset after the request was written or a 500/502/504 may hide a queued message,
    and the protocol has no idempotency key, so re-sending those could deliver the card twice.
    """
    return isinstance(error, NotSentError) and error.transient and (error.retry_after or 0) <= MAX_RETRY_AFTER


def _backoff(attempt: int) -> float:
    """The wait before the retry after the ``attempt``-th failure, when the gateway gave no ``Retry-After``."""
    return min(BACKOFF_FACTOR * 2 ** (attempt - 1), MAX_BACKOFF)


def _wait(state: tenacity.RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, NotSentError) and error.retry_after is not None:
        return error.retry_after
    return _backoff(state.attempt_number)


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


# ---- pacing a batch ----------------------------------------------------------------------------


class Pacer:
    """One batch's pace, and one pause for the whole batch when the gateway rate-limits (its
    ``Retry-After``, else an exponential backoff) rather than each request backing off on its own. It wraps
    :func:`call_with_httpx` and takes the same arguments.

    ``per_second`` bounds what the gateway sees in any one second, wherever that second falls. A request
    holds one of ``per_second`` places (rounded down; below one a second, one place) from its start until a
    second after its answer (``1 / per_second`` seconds below one a second). The gateway saw each request
    between its start and its answer, whatever the network's delays, so the requests through one place
    reach it at least a second apart, and no sliding second there holds more than ``per_second``. The cost
    is the round trip: each place serves a request every ``1 + round trip`` seconds. Starts are also spread
    ``1 / per_second`` apart, so a batch does not open with a burst."""

    def __init__(self, per_second: float | None = None) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._hold = max(1.0, self._interval)
        # A place is taken at a request's start and given back ``_hold`` after its answer. Without a pace
        # there are more places than requests, so none is ever waited for.
        self._places = asyncio.Semaphore(max(1, int(per_second)) if per_second else sys.maxsize)
        self._turn = asyncio.Lock()  # fair: requests start in the order they asked
        self._next_start = self._paused_until = 0.0
        self._rate_limited = 0  # 429s in a row

    async def __call__(self, client: httpx.AsyncClient, settings: GatewaySettings, call: Call[T]) -> T:
        loop = asyncio.get_running_loop()
        async with self._turn:
            await self._places.acquire()  # the place free soonest, once its request's answer is a second old
            try:
                start = max(loop.time(), self._next_start)
                while (now := loop.time()) < (start := max(start, self._paused_until)):
                    await asyncio.sleep(start - now)  # and again if a 429 met meanwhile moved the pause
            except BaseException:
                self._places.release()  # never used
                raise
            self._next_start = start + self._interval  # from the planned start: a late wake-up catches up
        try:
            result: T = await call_with_httpx(client, settings, call)
        except RateLimitedError as error:
            self._rate_limited += 1
            wait = _backoff(self._rate_limited) if error.retry_after is None else error.retry_after
            self._paused_until = max(self._paused_until, loop.time() + min(wait, MAX_RETRY_AFTER))
            raise
        finally:
            loop.call_later(self._hold, self._places.release)
        self._rate_limited = 0
        return result


# What became of a send, as a progress line names it (and in this order).
_SENT, _EARLIER, _REFUSED, _UNKNOWN = "sent", "already sent by an earlier try", "not sent", "outcome unknown"


@dataclass
class Progress:
    """Counts the finished sends of a batch of ``total`` started at ``started`` (monotonic seconds), and says
    so at most every ``every`` seconds and every tenth."""

    total: int
    started: float
    every: float = 10.0
    counts: Counter[str] = field(default_factory=Counter)
    _last_line: float = field(default=0.0, init=False)
    _last_done: int = field(default=0, init=False)

    def finished(self, now: float, outcome: object) -> str | None:
        """Count one finished send by its ``outcome`` (its result, or the error it raised); the progress line
        when one is due, else None."""
        self.counts[_kind(outcome)] += 1
        done = self.counts.total()
        if done == self.total:
            return None  # the summary says the rest
        if now - max(self._last_line, self.started) < self.every or done - self._last_done < self.total / 10:
            return None
        self._last_line, self._last_done = now, done
        left = (self.total - done) / (done / max(now - self.started, 1e-9))
        return f"{done}/{self.total} done ({done * 100 // self.total} %): {self._tally(now)}, ~{left:.0f} s left"

    def summary(self, now: float) -> str:
        """The one line that closes the batch: ``1000 in 0.3 s: 10 sent (33/s), 990 already sent by an
        earlier try``."""
        return f"{self.counts.total()} in {max(now - self.started, 1e-9):.1f} s: {self._tally(now)}"

    def _tally(self, now: float) -> str:
        sent = self.counts[_SENT]
        rate = f" ({sent / max(now - self.started, 1e-9):.0f}/s)" if sent else ""
        others = [f"{self.counts[kind]} {kind}" for kind in (_EARLIER, _REFUSED, _UNKNOWN) if self.counts[kind]]
        return ", ".join([f"{sent} {_SENT}{rate}", *others])


def _kind(outcome: object) -> str:
    if isinstance(outcome, SendResult):
        return _EARLIER if outcome.earlier_try else _SENT
    if isinstance(outcome, NotSentError):
        return _REFUSED  # certainly not queued: a refusal, or a failure before the gateway took it
    return _UNKNOWN if isinstance(outcome, BaseException) else _SENT  # other plans (deliveries): each one done


async def run_batch(
    drive: Callable[[Plan[T], Pacer], Awaitable[T]],
    plans: Sequence[Plan[T]],
    *,
    max_in_flight: int,
    log: Log,
    label: str | None = None,
    max_per_second: float | None = None,
    checkpoints: Ledger | None = None,
) -> list[T | BaseException]:
    """Drive plans concurrently, at most ``max_in_flight`` at a time, through one :class:`Pacer`. Every plan
    started runs to its end, whatever the others do; a plan's error, of any kind, is returned in its place.
    With a ``label``, a long batch logs its progress (at most every 10 s and every tenth) and one summary.
    With ``checkpoints`` (a fan-out's ledger), the plans run in its ``waves``, each between its
    ``before_wave`` and its ``after_wave`` (called even when the wave is interrupted)."""
    in_flight = asyncio.Semaphore(max_in_flight)
    pacer = Pacer(max_per_second)
    progress = Progress(len(plans), time.monotonic()) if label else None

    def finished(outcome: object) -> None:
        if progress and (line := progress.finished(time.monotonic(), outcome)):
            log.info("%s: %s", label, line)

    async def run_one(plan: Plan[T]) -> T:
        async with in_flight:
            try:
                result = await drive(plan, pacer)
            except BaseException as error:
                finished(error)
                raise
            finished(result)
            return result

    outcomes: list[T | BaseException] = []
    for start, stop in checkpoints.waves() if checkpoints else [(0, len(plans))]:
        if checkpoints:
            checkpoints.before_wave(start, stop)
        try:
            outcomes += await asyncio.gather(*map(run_one, plans[start:stop]), return_exceptions=True)
        finally:
            if checkpoints:
                checkpoints.after_wave(start, stop)
    if progress:
        log.info("%s: %s", label, progress.summary(time.monotonic()))
    return outcomes


# ---- the transports ----------------------------------------------------------------------------
# The token travels in the URL, and both libraries put the URL in their messages: what they raised is
# described with the token scrubbed, and dropped from the traceback (``from None``) so that it cannot be
# printed either.


def call_with_requests(session: requests.Session, settings: GatewaySettings, call: Call[T]) -> T:
    """Make one call over a ``requests`` session, redirects not followed."""
    request = call.request
    # The token goes straight into the call, never into a local of this frame: a rich traceback (Airflow
    # 3.0's `dags test`) prints the locals of every frame an error passes through.
    try:
        response = session.request(
            request.method,
            f"{settings.api_url}/{request.endpoint}",
            params={**request.params, "token": settings.token},
            json=request.json,
            timeout=settings.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise _requests_failure(request, error, settings.token) from None
    return call.parse(ApiResponse(response.status_code, response.headers, response.content, secret=settings.token))


async def call_with_httpx(client: httpx.AsyncClient, settings: GatewaySettings, call: Call[T]) -> T:
    """Make one call over an ``httpx`` client (built with redirects off)."""
    request = call.request
    url = f"{settings.api_url}/{request.endpoint}"
    try:  # the token straight into the call, as above
        response = await client.request(
            request.method, url, params={**request.params, "token": settings.token}, json=request.json
        )
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise _httpx_failure(request, error, settings.token) from None
    return call.parse(ApiResponse(response.status_code, response.headers, response.content, secret=settings.token))


def _requests_failure(request: ApiRequest, error: requests.RequestException, token: str) -> GatewayError:
    """The protocol's error for what ``requests`` raised: never sent, or sent with its answer lost; named by
    the innermost cause (requests wraps urllib3's in a message about retries and the URL)."""
    reason = error.args[0].reason if error.args and isinstance(error.args[0], MaxRetryError) else None
    cause = error if reason is None else reason
    if isinstance(error, requests.ConnectionError):
        # urllib3's NewConnectionError (refused, DNS failure) is a ConnectTimeoutError.
        connect_errors = (requests.ConnectTimeout, requests.exceptions.SSLError)
        never_sent = isinstance(error, connect_errors) or isinstance(reason, (ConnectTimeoutError, SSLError))
    else:
        # Timeouts and broken answers come after the request was written; anything else requests raises
        # (bad URL, bad header) comes before it.
        after = (requests.Timeout, requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
        never_sent = not isinstance(error, after)
    detail = scrub_secret(f"{type(cause).__name__}: {cause}", token)
    return connection_failed(request, detail) if never_sent else response_lost(request, detail)


def _httpx_failure(request: ApiRequest, error: Exception, token: str) -> GatewayError:
    """The protocol's error for what ``httpx`` raised: its errors often have no text of their own, so the
    socket error behind them is named, if any."""
    if isinstance(error, httpx.TimeoutException):
        text = "timed out"  # its causes speak of cancel scopes, not of the gateway
    else:
        cause: BaseException | None = error
        for _ in range(10):  # a bounded walk: chains of causes can loop
            if cause is None or (isinstance(cause, OSError) and str(cause)):
                break
            cause = cause.__cause__ or cause.__context__
        text = str(cause if cause is not None else error) or "no detail"
    failed = connection_failed if isinstance(error, _HTTPX_NEVER_SENT) else response_lost
    return failed(request, scrub_secret(f"{type(error).__name__}: {text}", token))
