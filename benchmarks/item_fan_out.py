"""3. Async fan-out.

``await ChatApiHook().asend_to_many(contacts, recipients, max_in_flight=20)`` for 200 recipients against
a stand-in in its own process answering after 20 ms, against the same 200 sent one after another with
``send_contact()``. Targets: at least 8x faster, and within 1.5x of the ideal ``ceil(200 / 20) * 20
ms``. Printed to explain a miss: the client's CPU time; the floor (the same requests, prebuilt, through a
bare ``httpx.AsyncClient`` with the same bound); a run against a 100 ms gateway, where the same CPU time
hides behind the waiting; and a run against an in-process stand-in, which competes with the client for
the GIL (hence the separate process elsewhere) and counts the connections and concurrent requests it
saw, to check that ``max_in_flight`` holds.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from harness import (
    HUMAN_CONTACTS,
    REQUEST_TIMEOUT,
    Sample,
    Verdict,
    chatapi_default,
    column,
    expect_queued,
    heading,
    human_phone,
    interleaved,
    judge,
    print_samples,
    send_target,
    stand_in_process,
    wire_body,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_chatapi._protocol.record import Ledger

    Send = Callable[[list[str]], list[str]]  # recipients -> the ids of their queued cards

FAN_OUT_RECIPIENTS = 200
FAN_OUT_DELAY = 0.02
FAN_OUT_MAX_IN_FLIGHT = 20
FAN_OUT_ROUNDS = 3
FAN_OUT_SLOW_DELAY = 0.1  # a diagnostic run at a more realistic gateway latency
FAN_OUT_SLOW_ROUNDS = 2
FAN_OUT_MIN_SPEEDUP = 8.0
FAN_OUT_MAX_OVER_IDEAL = 1.5


def timed_sends(send: Callable[[list[str]], list[str]], phones: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for ``send(phones)`` to queue the recipients' cards (checked)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    card_ids = send(phones)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    expect_queued(card_ids, len(phones))
    return elapsed, cpu


def sequential_sends(phones: list[str]) -> list[str]:
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

    hook = ChatApiHook()
    return [hook.send_contact(HUMAN_CONTACTS, phone=phone).id for phone in phones]


def hook_fan_out(phones: list[str], ledger: Ledger | None = None, max_per_second: float | None = None) -> list[str]:
    """One ``asend_to_many`` over ``phones`` (with ``ledger`` and ``max_per_second``, if given), with a hook
    built inside the timing."""
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

    async def send() -> list[str]:
        hook = ChatApiHook()
        results = await hook.asend_to_many(
            HUMAN_CONTACTS, phones, max_in_flight=FAN_OUT_MAX_IN_FLIGHT, ledger=ledger, max_per_second=max_per_second
        )
        return [result.id for result in results]

    return asyncio.run(send())


def httpx_fan_out(connection: dict[str, Any], phones: list[str]) -> list[str]:
    """The async floor: the same requests, prebuilt, through a bare ``httpx.AsyncClient`` with the same bound."""
    import httpx

    url, params = send_target(connection)
    bodies = [wire_body(index) for index in range(len(phones))]
    limits = httpx.Limits(max_connections=FAN_OUT_MAX_IN_FLIGHT, max_keepalive_connections=FAN_OUT_MAX_IN_FLIGHT)

    async def send_all() -> list[str]:
        in_flight = asyncio.Semaphore(FAN_OUT_MAX_IN_FLIGHT)
        async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT) as client:

            async def send(body: dict[str, Any]) -> str:
                async with in_flight:
                    answer = await client.post(url, params=params, json=body)
                return answer.json()["id"]

            return list(await asyncio.gather(*(send(body) for body in bodies)))

    return asyncio.run(send_all())


def fan_out_slow_gateway(phones: list[str]) -> Sample:
    """Fan-outs against a stand-in answering after :data:`FAN_OUT_SLOW_DELAY`: the same CPU, more waiting."""
    with stand_in_process(delay=FAN_OUT_SLOW_DELAY) as connection, chatapi_default(connection):
        values = [timed_sends(hook_fan_out, phones)[0] for _ in range(FAN_OUT_SLOW_ROUNDS)]
    return Sample(f"asend_to_many, gateway delay {FAN_OUT_SLOW_DELAY * 1e3:.0f} ms", values)


def fan_out_in_process(phones: list[str]) -> tuple[Sample, int, int]:
    """Fan-outs against an in-process stand-in; the most connections and concurrent requests it saw."""
    from airflow_provider_chatapi.testing import StandInGateway

    values, connections, peak = [], 0, 0
    with StandInGateway(delay=FAN_OUT_DELAY) as gateway, chatapi_default(json.loads(gateway.connection_json())):
        for _ in range(FAN_OUT_ROUNDS + 1):  # the first is a warm-up
            gateway.reset()
            values.append(timed_sends(hook_fan_out, phones)[0])
            connections = max(connections, len({request.client_port for request in gateway.requests}))
            peak = max(peak, gateway.peak_in_flight)
    return Sample("asend_to_many, stand-in in this process", values[1:]), connections, peak


def run() -> list[Verdict]:
    heading(
        f"3. Async fan-out ({FAN_OUT_RECIPIENTS} recipients, gateway delay {FAN_OUT_DELAY * 1e3:.0f} ms,"
        f" max_in_flight={FAN_OUT_MAX_IN_FLIGHT}, {FAN_OUT_ROUNDS} rounds, stand-in in its own process)"
    )
    phones = [human_phone(index) for index in range(FAN_OUT_RECIPIENTS)]
    with stand_in_process(delay=FAN_OUT_DELAY) as connection, chatapi_default(connection):
        bare_httpx = partial(httpx_fan_out, connection)
        senders: dict[str, Send] = {"sequential": sequential_sends, "concurrent": hook_fan_out, "httpx": bare_httpx}
        for send in senders.values():
            timed_sends(send, phones[:FAN_OUT_MAX_IN_FLIGHT])  # warm-up
        runs = interleaved(FAN_OUT_ROUNDS, {name: partial(timed_sends, send, phones) for name, send in senders.items()})
    one_by_one = Sample("sequential send_contact()", column(runs["sequential"], 0))
    together = Sample(f"asend_to_many(max_in_flight={FAN_OUT_MAX_IN_FLIGHT})", column(runs["concurrent"], 0))
    client_cpu = Sample("  CPU time of this process per asend_to_many", column(runs["concurrent"], 1))
    floor = Sample("  bare httpx.AsyncClient, same bound (floor)", column(runs["httpx"], 0))
    in_process, connections, peak = fan_out_in_process(phones)
    slow = fan_out_slow_gateway(phones)
    print_samples(one_by_one, together, client_cpu, floor, in_process, slow)

    waves = math.ceil(FAN_OUT_RECIPIENTS / FAN_OUT_MAX_IN_FLIGHT)
    ideal, slow_ideal = waves * FAN_OUT_DELAY, waves * FAN_OUT_SLOW_DELAY
    print(
        f"  with a {FAN_OUT_SLOW_DELAY * 1e3:.0f} ms gateway the ideal is {slow_ideal * 1e3:,.0f} ms:"
        f" {slow.median / slow_ideal:.2f}x"
    )
    honoured = "" if max(connections, peak) <= FAN_OUT_MAX_IN_FLIGHT else ": max_in_flight is NOT honoured"
    print(f"  the in-process stand-in saw {connections} connections, {peak} requests in flight at most{honoured}")
    print(f"  ideal: {waves} waves of {FAN_OUT_MAX_IN_FLIGHT} x {FAN_OUT_DELAY * 1e3:.0f} ms = {ideal * 1e3:.0f} ms;")
    print(
        f"  the client is busy {client_cpu.median / together.median:.0%} of the time"
        f" ({client_cpu.median / len(phones) * 1e6:,.0f} µs of CPU per recipient); bare httpx is"
        f" {floor.median / ideal:.2f}x the ideal, asend_to_many {together.median / floor.median:.2f}x bare httpx"
    )
    speedup, over_ideal = one_by_one.median / together.median, together.median / ideal
    fast_ok = speedup >= FAN_OUT_MIN_SPEEDUP
    ideal_ok = over_ideal <= FAN_OUT_MAX_OVER_IDEAL
    judge(f"{speedup:.1f}x faster than sequential (target >= {FAN_OUT_MIN_SPEEDUP:.0f}x)", fast_ok)
    judge(f"{over_ideal:.2f}x the ideal (target <= {FAN_OUT_MAX_OVER_IDEAL}x)", ideal_ok)
    measured = f"{together.median * 1e3:.0f} vs {one_by_one.median * 1e3:,.0f} ms sequential; ideal {ideal * 1e3:.0f}"
    return [
        Verdict("3a async fan-out speed-up", measured, f"{speedup:.1f}x", f">= {FAN_OUT_MIN_SPEEDUP:.0f}x", fast_ok),
        Verdict("3b async fan-out vs ideal", measured, f"{over_ideal:.2f}x", f"<= {FAN_OUT_MAX_OVER_IDEAL}x", ideal_ok),
    ]
