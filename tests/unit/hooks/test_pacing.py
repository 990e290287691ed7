"""A batch keeps its pace: at most ``max_per_second`` requests in any second at the gateway, starts spread
``1 / max_per_second`` apart, and one pause for the whole batch on a 429 instead of each request backing
off alone."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_chatapi.exceptions import InvalidInputError, RateLimitedError
from airflow_provider_chatapi.hooks import _http
from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator
from airflow_provider_chatapi.testing import StandInGateway

GENERATED = settings(
    max_examples=1000 if os.environ.get("CHATAPI_HYPOTHESIS") == "deep" else 100,
    deadline=None,
    derandomize=os.environ.get("CHATAPI_HYPOTHESIS") != "deep",  # the suite's run is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def started_at(
    monkeypatch: pytest.MonkeyPatch, pacer_args: dict[str, Any], calls: int, fail_first: float | None = None
) -> list[float]:
    """When each of ``calls`` concurrent requests reached the (fake) transport, from the batch's start."""
    starts: list[float] = []

    async def transport(client: Any, settings: Any, call: Any) -> str:
        starts.append(time.monotonic())
        if fail_first is not None and len(starts) == 1:
            raise RateLimitedError("sendContact", "slow down", status_code=429, retry_after=fail_first)
        return "ok"

    monkeypatch.setattr(_http, "call_with_httpx", transport)

    async def batch() -> float:
        pacer = _http.Pacer(**pacer_args)
        begun = time.monotonic()
        await asyncio.gather(*(pacer(None, None, None) for _ in range(calls)), return_exceptions=True)  # type: ignore[arg-type]
        return begun

    begun = asyncio.run(batch())
    return [start - begun for start in starts]


def test_requests_start_at_most_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The n-th start is planned ``n / per_second`` after the first; a late wake-up delays only its own
    request (the next is not pushed back: that would slow the batch), so the spacing holds from the
    batch's start, not between any two requests on a loaded machine."""
    starts = started_at(monkeypatch, {"per_second": 20}, calls=6)
    assert all(start >= index * 0.05 - 1e-6 for index, start in enumerate(starts))


def test_without_a_bound_requests_start_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert max(started_at(monkeypatch, {}, calls=6)) < 0.2  # 20 a second would take 0.25 s


def test_a_429_pauses_every_request_not_yet_started(monkeypatch: pytest.MonkeyPatch) -> None:
    starts = started_at(monkeypatch, {"per_second": 100}, calls=5, fail_first=0.3)
    assert starts[0] < 0.3 <= min(starts[1:])  # the others waited out the gateway's Retry-After


def test_a_429_also_pauses_requests_already_waiting_for_their_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20, item 7: a request that had taken its slot and was sleeping until it started anyway, past a
    pause set by a 429 met meanwhile."""
    starts: list[float] = []

    async def transport(client: Any, settings: Any, call: Any) -> str:
        starts.append(time.monotonic())
        if len(starts) == 1:
            await asyncio.sleep(0.05)  # the others have taken their slots (0.1 s, 0.2 s, ...) by now
            raise RateLimitedError("sendContact", "slow down", status_code=429, retry_after=0.5)
        return "ok"

    monkeypatch.setattr(_http, "call_with_httpx", transport)

    async def batch() -> float:
        pacer = _http.Pacer(per_second=10)
        begun = time.monotonic()
        await asyncio.gather(*(pacer(None, None, None) for _ in range(4)), return_exceptions=True)  # type: ignore[arg-type]
        return begun

    begun = asyncio.run(batch())
    assert min(start - begun for start in starts[1:]) >= 0.5


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_max_per_second_is_checked_when_the_dag_is_parsed(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="max_per_second"):
        SendContactToManyOperator(
            task_id="many", contact_ids=["79001111111"], recipients=["79002222222"], max_per_second=bad
        )


def test_a_paced_fan_out_sends_every_card_at_its_pace(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    recipients = [f"7900{index:07d}" for index in range(10)]
    operator = SendContactToManyOperator(
        task_id="many", contact_ids=["79001111111"], recipients=recipients, max_in_flight=10, max_per_second=20
    )
    started = time.monotonic()
    ids = operator.execute({})  # type: ignore[arg-type]
    assert time.monotonic() - started >= 0.45  # nine gaps of 50 ms
    assert sorted(ids) == sorted(message.id for message in gateway.messages) and len(ids) == 10


def test_no_second_at_the_gateway_holds_more_than_max_per_second(stand_in: Callable[..., StandInGateway]) -> None:
    """Issue 22, item 1: spacing the starts by 1 / max_per_second let wake-ups bunch, and 200 a second put
    up to 214 requests into one sliding second at the gateway. Every second of 10,000 sends is counted
    here, from the stand-in's own arrival times."""
    gateway = stand_in()
    limit = 500
    recipients = [f"7900{index:07d}" for index in range(10_000)]
    operator = SendContactToManyOperator(
        task_id="many", contact_ids=["79001111111"], recipients=recipients, max_in_flight=50, max_per_second=limit
    )
    operator.execute({})  # type: ignore[arg-type]
    arrivals = sorted(request.received_at for request in gateway.requests_to("sendContact"))
    assert len(arrivals) == len(recipients)
    assert busiest_second(arrivals) <= limit


# ---- every network: generated ------------------------------------------------------------------


class VirtualClock(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to its next timer whenever nothing is ready, so that hours of
    pacing take milliseconds. It reads the loop's ``_ready`` and ``_scheduled`` queues (CPython's, stable
    since 3.4): the test's own device, never the package's."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def _run_once(self) -> None:
        if not self._ready and self._scheduled:  # type: ignore[attr-defined]
            self.now = max(self.now, self._scheduled[0].when())  # type: ignore[attr-defined]
        super()._run_once()  # type: ignore[misc]


Exchange = tuple[float, float]  # a request's round trip (s), and where in it the gateway saw the request


@GENERATED
@given(
    per_second=st.one_of(st.integers(1, 30).map(float), st.floats(0.05, 30.0)),
    exchanges=st.lists(
        st.tuples(st.one_of(st.just(0.001), st.floats(0.0, 3.0)), st.floats(0.0, 1.0)),
        min_size=1,
        max_size=120,
    ),
    in_flight=st.integers(1, 60),
    rate_limited=st.sets(st.integers(0, 119), max_size=5),
)
def test_no_second_at_the_gateway_holds_more_whatever_the_network_does(
    per_second: float, exchanges: list[Exchange], in_flight: int, rate_limited: set[int]
) -> None:
    """Each request reaches the gateway anywhere between its start and its answer, after any round trip
    (late arrivals overtaken by later requests included), some answered with a 429: no window
    ``[t, t + 1)`` holds more than ``per_second`` (rounded down) arrivals, and below one a second no two
    arrivals are closer than ``1 / per_second``."""
    arrivals: list[float] = []
    loop = VirtualClock()

    async def transport(client: Any, settings: Any, call: int) -> str:
        round_trip, seen_at = exchanges[call]
        start = loop.time()
        arrivals.append(start + seen_at * round_trip)
        await asyncio.sleep(round_trip)
        if call in rate_limited:
            raise RateLimitedError("sendContact", "slow down", status_code=429, retry_after=None)
        return "ok"

    async def batch() -> None:
        pacer = _http.Pacer(per_second)
        bound = asyncio.Semaphore(in_flight)

        async def one(call: int) -> None:
            async with bound:
                await pacer(None, None, call)  # type: ignore[arg-type]

        await asyncio.gather(*(one(call) for call in range(len(exchanges))), return_exceptions=True)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_http, "call_with_httpx", transport)
        try:
            loop.run_until_complete(batch())
        finally:
            loop.close()
    arrivals.sort()
    assert len(arrivals) == len(exchanges)
    if per_second >= 1:
        assert busiest_second(arrivals) <= math.floor(per_second)
    else:
        assert min((later - earlier for earlier, later in itertools.pairwise(arrivals)), default=math.inf) >= (
            1 / per_second - 1e-9
        )


def busiest_second(arrivals: list[float]) -> int:
    """The most of the sorted ``arrivals`` in any window ``[t, t + 1)``."""
    return max(bisect.bisect_left(arrivals, arrival + 1.0) - index for index, arrival in enumerate(arrivals))
