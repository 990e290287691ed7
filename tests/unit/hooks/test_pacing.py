"""A batch keeps its pace: at most ``max_per_second`` requests started a second, and one pause for the
whole batch on a 429 instead of each request backing off alone."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_chatapi.exceptions import InvalidInputError, RateLimitedError
from airflow_provider_chatapi.hooks import _http
from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator
from airflow_provider_chatapi.testing import StandInGateway


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
    starts = started_at(monkeypatch, {"per_second": 20}, calls=6)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 0.045 and starts[-1] >= 0.24


def test_without_a_bound_requests_start_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert max(started_at(monkeypatch, {}, calls=6)) < 0.05


def test_a_429_pauses_every_request_not_yet_started(monkeypatch: pytest.MonkeyPatch) -> None:
    starts = started_at(monkeypatch, {"per_second": 100}, calls=5, fail_first=0.3)
    assert starts[0] < 0.05 and min(starts[1:]) >= 0.3  # the others waited out the gateway's Retry-After


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
    busiest = max(bisect.bisect_left(arrivals, arrival + 1.0) - index for index, arrival in enumerate(arrivals))
    assert busiest <= limit
