"""2. Sync send overhead, after the stand-in's ceiling.

Stand-in ceiling (printed before item 2): time per request of one sequential client of a stand-in in
its own process, through a bare ``requests.Session`` and through a raw socket sending prebuilt
requests. The latter is the stand-in's own time: how much of item 2's floor is the gateway.

Item 2: time per ``ChatApiHook.send_contact()`` over N sequential calls to an in-process stand-in (a
fresh hook each round, so reading its connection and opening its session are timed; the input is
human-written, so the hook validates and normalises it) against the floor: the same N
already-normalised requests, token as a query parameter, through a bare ``requests.Session`` that
parses each answer. Also printed: ``requests.post()`` without a session (what connection reuse saves)
and the hook's validation alone (``_protocol.sends.build_send_contact``). Target: at most 1.05x the
floor.
"""

from __future__ import annotations

import json
import socket
import time
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness import (
    HUMAN_CONTACTS,
    REQUEST_TIMEOUT,
    Verdict,
    chatapi_default,
    expect,
    heading,
    human_phone,
    interleaved,
    judge,
    micros,
    print_samples,
    send_target,
    stand_in_process,
    wire_body,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    Measure = Callable[[], float]

CEILING_REQUESTS = 500
CEILING_ROUNDS = 3
SEND_CALLS = 300
SEND_ROUNDS = 9
SEND_WARM_UP = 20
SEND_MAX_RATIO = 1.05


# ---- the stand-in's ceiling ----------------------------------------------------------------------


def session_round_trip(connection: dict[str, Any], count: int) -> float:
    """Seconds per request of ``count`` sends through one bare ``requests.Session``."""
    import requests

    url, params = send_target(connection)
    with requests.Session() as session:
        start = time.perf_counter()
        for index in range(count):
            session.post(url, params=params, json=wire_body(index), timeout=REQUEST_TIMEOUT).json()
        return (time.perf_counter() - start) / count


def raw_round_trip(connection: dict[str, Any], count: int) -> float:
    """Seconds per request of ``count`` prebuilt requests on one kept-alive socket: the stand-in's own time."""
    url = urlsplit(connection["host"])
    head = (
        f"POST {url.path}/sendContact?token={connection['password']} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    bodies = [json.dumps(wire_body(index)).encode() for index in range(count)]
    prebuilt = [head.format(length=len(body)).encode() + body for body in bodies]
    with socket.create_connection((url.hostname, url.port)) as sock, sock.makefile("rb") as answers:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        for request in prebuilt:
            sock.sendall(request)
            length = 0
            while (line := answers.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            answers.read(length)
        return (time.perf_counter() - start) / count


def bench_ceiling() -> float:
    """Print what a stand-in in its own process serves one sequential client; return its own share, in s."""
    heading(f"Stand-in gateway ceiling ({CEILING_REQUESTS} sequential requests, stand-in in its own process)")
    with stand_in_process() as connection:
        raw_round_trip(connection, CEILING_REQUESTS)  # warm-up
        variants = {"session": session_round_trip, "raw": raw_round_trip}
        results = interleaved(
            CEILING_ROUNDS, {name: partial(measure, connection, CEILING_REQUESTS) for name, measure in variants.items()}
        )
    session = micros("bare requests.Session", results["session"])
    raw = micros("raw socket (the stand-in's own time)", results["raw"])
    print_samples(session, raw, suffix=" per request")
    print(f"  ceiling: {1 / session.median:,.0f} requests/s with requests, {1 / raw.median:,.0f}/s with a raw client")
    return raw.median


# ---- 2. Sync send overhead -----------------------------------------------------------------------


def bench_sync_send(gateway_share: float | None) -> list[Verdict]:
    import requests

    from airflow_provider_chatapi._protocol.sends import build_send_contact
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
    from airflow_provider_chatapi.testing import StandInGateway

    heading(f"2. Sync send overhead ({SEND_CALLS} sequential sends, {SEND_ROUNDS} rounds, in-process stand-in)")
    phones = [human_phone(index) for index in range(SEND_CALLS)]
    bodies = [wire_body(index) for index in range(SEND_CALLS)]
    with StandInGateway() as gateway:
        connection = json.loads(gateway.connection_json())
        url, params = send_target(connection)

        def per_call(send: Callable[[int], object], count: int) -> float:
            gateway.reset()  # the stand-in's per-send work grows with what it holds
            start = time.perf_counter()
            for index in range(count):
                send(index)
            elapsed = time.perf_counter() - start
            expect(len(gateway.messages) == count, f"the stand-in queued {len(gateway.messages)} of {count} cards")
            return elapsed / count

        def hook_sends(count: int = SEND_CALLS) -> float:
            hook = ChatApiHook()  # fresh: it reads its connection and opens its session on the first send
            return per_call(lambda i: hook.send_contact(HUMAN_CONTACTS, phone=phones[i]), count)

        def bare_sends(post: Callable[..., Any], count: int = SEND_CALLS) -> float:
            return per_call(lambda i: post(url, params=params, json=bodies[i], timeout=REQUEST_TIMEOUT).json(), count)

        def session_sends(count: int = SEND_CALLS) -> float:
            with requests.Session() as session:
                return bare_sends(session.post, count)

        def validation_only() -> float:
            start = time.perf_counter()
            for phone in phones:
                build_send_contact(HUMAN_CONTACTS, phone=phone)
            return (time.perf_counter() - start) / SEND_CALLS

        post_sends = partial(bare_sends, requests.post)
        with chatapi_default(connection):
            for warm_up in (hook_sends, session_sends, post_sends):
                warm_up(SEND_WARM_UP)
            variants: dict[str, Measure] = {
                "hook": hook_sends,
                "session": session_sends,
                "post": post_sends,
                "validation": validation_only,
            }
            results = interleaved(SEND_ROUNDS, variants)
    hook = micros("ChatApiHook.send_contact()", results["hook"])
    floor = micros("bare requests.Session (the floor)", results["session"])
    post = micros("requests.post(), no session", results["post"])
    validation = micros("  hook's validation and normalisation alone", results["validation"])
    print_samples(hook, floor, post, validation, suffix=" per call")
    ratio, added = hook.median / floor.median, hook.median - floor.median
    print(
        f"  the hook adds {added * 1e6:+.0f} µs per call ({validation.median * 1e6:.0f} µs of it validation):"
        f" {ratio:.3f}x the floor; requests.post() is {post.median / floor.median:.2f}x"
    )
    if gateway_share:
        print(f"  the stand-in's own time is ~{gateway_share * 1e6:.0f} µs of the floor's {floor.median * 1e6:.0f} µs")
    ok = judge(f"target: at most {SEND_MAX_RATIO}x the floor", ratio <= SEND_MAX_RATIO)
    measured = f"{hook.median * 1e6:.0f} vs {floor.median * 1e6:.0f} µs per call ({added * 1e6:+.0f} µs)"
    return [Verdict("2 sync send overhead", measured, f"{ratio:.3f}x", f"<= {SEND_MAX_RATIO}x", ok)]


def run() -> list[Verdict]:
    return bench_sync_send(bench_ceiling())
