"""The hook's two thin transports, ``requests`` and ``httpx``, the one retry policy they share, and batches
(paced, bounded, with their progress lines).

Each transport only moves bytes: it makes the request the protocol built, turns what its library raised
into the protocol's classification (never sent, or sent with the answer lost), and hands the answer to
the call's parser. The token travels in every URL, so nothing either library says is shown unscrubbed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx
import requests
import tenacity
from airflow.providers.common.compat.sdk import redact
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, SSLError

from airflow_provider_chatapi._protocol.http import ApiResponse, connection_failed, response_lost, scrub_secret
from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import NotSentError, RateLimitedError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from airflow_provider_chatapi._protocol.connection import GatewaySettings
    from airflow_provider_chatapi._protocol.http import Call, Plan
    from airflow_provider_chatapi._protocol.record import Log

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
    a line per request (10,000 for a fan-out to 10,000): they become DEBUG, as ``requests`` logs its own,
    and are dropped here unless the logger is enabled for DEBUG (the level was checked before this filter,
    and Airflow 2.11's task log handlers take any record that reaches them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                return False
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        if record.args:
            record.msg, record.args = redact(record.getMessage()), ()
        return True


_MASKED_REQUEST_LOG = _MaskedRequestLog()


def new_async_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """An ``httpx`` client for one event loop, whose request log lines are masked."""
    logging.getLogger("httpx").addFilter(_MASKED_REQUEST_LOG)  # once: a filter already there is not added again
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
        self._places = max(1, math.floor(per_second)) if per_second else 0
        self._free: asyncio.PriorityQueue[float] = asyncio.PriorityQueue()  # when each idle place is free
        self._opened = 0  # places in use or idle; opened as needed, so a huge per_second costs nothing
        self._turn = asyncio.Lock()  # fair: requests start in the order they asked
        self._next_start = 0.0
        self._paused_until = 0.0
        self._rate_limited = 0  # 429s in a row

    async def __call__(self, client: httpx.AsyncClient, settings: GatewaySettings, call: Call[T]) -> T:
        loop = asyncio.get_running_loop()
        async with self._turn:
            free_at = await self._take_place()
            try:
                start = max(loop.time(), free_at, self._next_start)
                while (now := loop.time()) < (start := max(start, self._paused_until)):
                    await asyncio.sleep(start - now)  # and again if a 429 met meanwhile moved the pause
            except BaseException:
                self._give_back(free_at)  # never used
                raise
            self._next_start = start + self._interval  # from the planned start: a late wake-up catches up
        try:
            result: T = await call_with_httpx(client, settings, call)
        except RateLimitedError as error:
            self._rate_limited += 1
            wait = error.retry_after
            if wait is None:
                wait = min(BACKOFF_FACTOR * 2 ** (self._rate_limited - 1), MAX_BACKOFF)
            self._paused_until = max(self._paused_until, loop.time() + min(wait, MAX_RETRY_AFTER))
            raise
        finally:
            self._give_back(loop.time() + self._hold)
        self._rate_limited = 0
        return result

    async def _take_place(self) -> float:
        """When the place this request takes is free: a new one at once while fewer than ``per_second``
        are open, else the one free soonest among those whose requests have been answered."""
        if not self._places:
            return 0.0
        if self._opened < self._places:
            self._opened += 1
            return 0.0
        return await self._free.get()

    def _give_back(self, free_at: float) -> None:
        if self._places:
            self._free.put_nowait(free_at)


PROGRESS_EVERY = 10.0
"""Seconds between two progress lines of one batch, at least."""

# What became of a send, in the order a line names them, and how a line names each.
_SENT, _EARLIER, _REFUSED, _UNKNOWN = "sent", "earlier", "refused", "unknown"
_SAID = {
    _SENT: "sent",
    _EARLIER: "already sent by an earlier try",
    _REFUSED: "not sent",
    _UNKNOWN: "outcome unknown",
}


@dataclass
class Progress:
    """Counts the finished sends of a batch of ``total`` started at ``started`` (monotonic seconds)."""

    total: int
    started: float
    every: float = PROGRESS_EVERY
    counts: Counter[str] = field(default_factory=Counter)
    _last_line: float = field(default=0.0, init=False)
    _last_done: int = field(default=0, init=False)

    @property
    def done(self) -> int:
        return self.counts.total()

    def finished(self, now: float, outcome: object) -> str | None:
        """Count one finished send by its ``outcome`` (its result, or the error it raised); the progress line
        when one is due, else None."""
        self.counts[_kind(outcome)] += 1
        done = self.done
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
        return f"{self.done} in {max(now - self.started, 1e-9):.1f} s: {self._tally(now)}"

    def _tally(self, now: float) -> str:
        rate = f" ({self.counts[_SENT] / max(now - self.started, 1e-9):.0f}/s)" if self.counts[_SENT] else ""
        parts = [f"{self.counts[kind]} {said}" for kind, said in _SAID.items() if self.counts[kind] or kind == _SENT]
        parts[0] += rate
        return ", ".join(parts)


def _kind(outcome: object) -> str:
    if isinstance(outcome, SendResult):
        return _EARLIER if outcome.earlier_try else _SENT
    if isinstance(outcome, NotSentError):
        return _REFUSED  # certainly not queued: a refusal, or a failure before the gateway took it
    if isinstance(outcome, BaseException):
        return _UNKNOWN
    return _SENT  # a batch of other plans (deliveries) counts each as done


class Checkpoints(Protocol):
    """What a batch records around each wave of its sends (a fan-out's ledger)."""

    def waves(self) -> Sequence[tuple[int, int]]: ...

    def before_wave(self, start: int, stop: int) -> None: ...

    def after_wave(self, start: int, stop: int) -> None: ...


async def run_batch(
    drive: Callable[[Plan[T], Pacer], Awaitable[T]],
    plans: Sequence[Plan[T]],
    *,
    max_in_flight: int,
    log: Log,
    label: str | None = None,
    max_per_second: float | None = None,
    checkpoints: Checkpoints | None = None,
) -> list[T | BaseException]:
    """Drive plans concurrently, at most ``max_in_flight`` at a time, through one :class:`Pacer`. Every plan
    started runs to its end, whatever the others do; a plan's error, of any kind, is returned in its place.
    With a ``label``, a long batch logs its progress (at most every 10 s and every tenth) and one summary.
    With ``checkpoints``, the plans run in its ``waves``, each between its ``before_wave`` and its
    ``after_wave`` (called even when the wave is interrupted)."""
    in_flight = asyncio.Semaphore(max_in_flight)
    pacer = Pacer(max_per_second)
    progress = Progress(len(plans), time.monotonic()) if label else None

    def finished(outcome: object) -> None:
        line = progress.finished(time.monotonic(), outcome) if progress else None
        if line:
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


def call_with_requests(session: requests.Session, settings: GatewaySettings, call: Call[T]) -> T:
    """Make one call over a ``requests`` session, redirects not followed."""
    try:
        url, params = f"{settings.api_url}/{call.request.endpoint}", {**call.request.params, "token": settings.token}
        response = session.request(
            call.request.method,
            url,
            params=params,
            json=call.request.json,
            timeout=settings.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        # requests puts the full URL, token included, in its messages: scrub it, and drop the original
        # from the traceback (``from None``) so that it cannot be printed either.
        detail = scrub_secret(_describe_requests(error), settings.token)
        failure = connection_failed if _never_sent(error) else response_lost
        raise failure(call.request, detail) from None
    return call.parse(ApiResponse(response.status_code, response.headers, response.content, secret=settings.token))


async def call_with_httpx(client: httpx.AsyncClient, settings: GatewaySettings, call: Call[T]) -> T:
    """Make one call over an ``httpx`` client (built with redirects off)."""
    try:
        url, params = f"{settings.api_url}/{call.request.endpoint}", {**call.request.params, "token": settings.token}
        response = await client.request(call.request.method, url, params=params, json=call.request.json)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        detail = scrub_secret(_describe_httpx(error), settings.token)
        failure = connection_failed if isinstance(error, _HTTPX_NEVER_SENT) else response_lost
        raise failure(call.request, detail) from None
    return call.parse(ApiResponse(response.status_code, response.headers, response.content, secret=settings.token))


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
