"""2. Sync send overhead, after the stand-in's ceiling.

Stand-in ceiling (printed before item 2): time per request of one sequential client of a stand-in in
its own process, through a bare ``requests.Session`` and through a raw socket sending prebuilt
requests. The latter is the stand-in's own time: how much of item 2's floor is the gateway.

Item 2: time per ``ChatApiHook.send_contact()`` over N sequential calls to a stand-in in its own process
(emptied through its control API before each round), a fresh hook each round, so reading its connection
and opening its session are timed, against the floor: N already-normal requests, token as a query
parameter, through a bare ``requests.Session`` that parses each answer. Two figures, side by side in one
run:

- 2a, already-normal input: the floor's own recipients (``79000000001``) and contact ids
  (``79001111111@c.us``), the same ones each round as the floor's requests are (the warm-up round has
  shown them to the hook once). Target: at most 1.05x the floor.
- 2b, human-written input never seen before (``+7 (900) 500-00-01``): every send of every round to a new
  number, so that no cache in the provider knows it; the ratio is reported. What such a number costs is
  timed directly: ``_protocol.sends.build_send_contact`` (the validation every send goes through) of a
  send to each of N never-seen numbers, and to each of N seen before, each timed right before the hook
  sends it (a loop of validations alone read 3-4x faster than a send pays: see docs/performance.md).
  Target: a send to a never-seen number validated in under 0.3 ms (the whole validation, not only its
  excess over a seen number, so the target means the same with or without any cache).

Also printed: ``requests.post()`` without a session (what connection reuse saves), the range of each
round's own ratio, and the validation of never-seen numbers already normal. The numbers are written by
``harness.human_phone`` and ``harness.wire_phone``, and go through the hook as a DAG author's would:
nothing here names how the hook validates them.
"""

from __future__ import annotations

import itertools
import json
import socket
import statistics
import time
from contextlib import closing
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness import (
    HUMAN_CONTACTS,
    REQUEST_TIMEOUT,
    WIRE_CONTACTS,
    Verdict,
    chatapi_default,
    expect,
    heading,
    human_phone,
    interleaved,
    judged,
    micros,
    print_samples,
    send_target,
    stand_in_control,
    stand_in_process,
    wire_body,
    wire_phone,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from harness import Sample

    Measure = Callable[[], float]

CEILING_REQUESTS = 500
CEILING_ROUNDS = 3
SEND_CALLS = 300
SEND_ROUNDS = 9
SEND_MAX_RATIO = 1.05
NEW_NUMBER_MAX = 0.3e-3  # seconds to validate a send to a number never seen before
# Never-seen recipients are numbered from here up (a few thousand a run): clear of the floor's recipients
# (0 to 299) and of the contacts' numbers (79001111111 and 79002222222 are recipients 1,111,111 and 2,222,222).
FIRST_NEW_NUMBER = 5_000_000


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

    heading(f"2. Sync send overhead ({SEND_CALLS} sequential sends, {SEND_ROUNDS} rounds, stand-in in its own process)")
    normal_phones = [wire_phone(index) for index in range(SEND_CALLS)]  # the floor's recipients
    seen_phones = [human_phone(index) for index in range(SEND_CALLS)]  # shown to the validation by the warm-up
    bodies = [wire_body(index) for index in range(SEND_CALLS)]
    new_numbers = itertools.count(FIRST_NEW_NUMBER)

    def never_seen(write: Callable[[int], str]) -> list[str]:
        return [write(next(new_numbers)) for _ in range(SEND_CALLS)]

    with stand_in_process() as connection, chatapi_default(connection):
        url, params = send_target(connection)

        def per_call(send: Callable[[int], object]) -> float:
            stand_in_control(connection, "reset", method="POST")  # its per-send work grows with what it holds
            start = time.perf_counter()
            for index in range(SEND_CALLS):
                send(index)
            elapsed = time.perf_counter() - start
            queued = stand_in_control(connection, "stats")["messages"]
            expect(queued == SEND_CALLS, f"the stand-in queued {queued} of {SEND_CALLS} cards")
            return elapsed / SEND_CALLS

        def hook_sends(contacts: list[str], phones: list[str]) -> float:
            with closing(ChatApiHook()) as hook:  # fresh: it reads its connection and opens its session here
                return per_call(lambda i: hook.send_contact(contacts, phone=phones[i]))

        def bare_sends(post: Callable[..., Any]) -> float:
            return per_call(lambda i: post(url, params=params, json=bodies[i], timeout=REQUEST_TIMEOUT).json())

        def session_sends() -> float:
            with requests.Session() as session:
                return bare_sends(session.post)

        def validation_between_sends(phones: list[str]) -> float:
            """Mean seconds to validate a send to each of ``phones``, each timed just before the hook sends it.

            Timed in a loop of sends, as a send pays it: a loop of validations alone reads several times faster.
            """
            spent: list[float] = []

            def validate_then_send(index: int) -> None:
                start = time.perf_counter()
                build_send_contact(HUMAN_CONTACTS, phone=phones[index])
                spent.append(time.perf_counter() - start)
                hook.send_contact(HUMAN_CONTACTS, phone=phones[index])  # untimed

            with closing(ChatApiHook()) as hook:
                per_call(validate_then_send)
            return statistics.fmean(spent)

        variants: dict[str, Measure] = {
            "normal": partial(hook_sends, WIRE_CONTACTS, normal_phones),
            "human": lambda: hook_sends(HUMAN_CONTACTS, never_seen(human_phone)),
            "session": session_sends,
            "post": partial(bare_sends, requests.post),
            "seen": partial(validation_between_sends, seen_phones),
            "new": lambda: validation_between_sends(never_seen(human_phone)),
            "new normal": lambda: validation_between_sends(never_seen(wire_phone)),
        }
        interleaved(1, variants)  # warm-up: imports, connections, and the numbers 2a and "seen" repeat
        results = interleaved(SEND_ROUNDS, variants)
    return report_sync_send({name: micros(LABELS[name], values) for name, values in results.items()}, gateway_share)


LABELS = {
    "normal": "2a ChatApiHook.send_contact(), already normal",
    "human": "2b ChatApiHook.send_contact(), new, written",
    "session": "bare requests.Session (the floor)",
    "post": "requests.post(), no session",
    "seen": "  validation, a number seen before",
    "new": "  validation, a never-seen number, written",
    "new normal": "  validation, a never-seen number, normal",
}


def each_round(sample: Sample, floor: Sample) -> str:
    """The range of each round's own ratio: the variants of a round ran next to each other, so its spread
    shows how much the machine moved under the medians."""
    ratios = [value / floor_value for value, floor_value in zip(sample.values, floor.values, strict=True)]
    return f"each round's own {min(ratios):.2f}x to {max(ratios):.2f}x"


def report_sync_send(samples: dict[str, Sample], gateway_share: float | None) -> list[Verdict]:
    """Print item 2's samples and ratios; its rows of the summary."""
    normal, human, floor, seen, new = (samples[name] for name in ("normal", "human", "session", "seen", "new"))
    print_samples(normal, human, floor, samples["post"], suffix=" per call")
    print_samples(seen, new, samples["new normal"], suffix=" per number")
    ratio_a, ratio_b = normal.median / floor.median, human.median / floor.median
    added_a, added_b = (normal.median - floor.median) * 1e6, (human.median - floor.median) * 1e6
    print(
        f"  2a: the hook adds {added_a:+.0f} µs per call on already-normal input: {ratio_a:.3f}x the floor"
        f" ({each_round(normal, floor)})"
    )
    print(
        f"  2b: {added_b:+.0f} µs per call on never-seen written numbers: {ratio_b:.3f}x the floor"
        f" ({each_round(human, floor)});"
        f" {(human.median - normal.median) * 1e6:+.0f} µs over 2a, against"
        f" {(new.median - seen.median) * 1e6:+.0f} µs of validation a never-seen number adds"
    )
    print(f"  requests.post() without a session is {samples['post'].median / floor.median:.2f}x the floor")
    if gateway_share:
        print(f"  the stand-in's own time is ~{gateway_share * 1e6:.0f} µs of the floor's {floor.median * 1e6:.0f} µs")
    new_cost = f"{new.median * 1e6:.0f} µs to validate ({(new.median - seen.median) * 1e6:+.0f} µs over a seen one)"
    return [
        judged(
            "2a sync send, normal input",
            f"2a: at most {SEND_MAX_RATIO}x the floor ({ratio_a:.3f}x)",
            ratio_a <= SEND_MAX_RATIO,
            measured=f"{normal.median * 1e6:.0f} vs {floor.median * 1e6:.0f} µs per call ({added_a:+.0f} µs)",
            ratio=f"{ratio_a:.3f}x",
            target=f"<= {SEND_MAX_RATIO}x",
        ),
        Verdict(
            "2b sync send, new written",
            f"{human.median * 1e6:.0f} vs {floor.median * 1e6:.0f} µs per call ({added_b:+.0f} µs)",
            f"{ratio_b:.3f}x",
            "none (report)",
            None,
        ),
        judged(
            "2b a never-seen number",
            f"2b: a send to a never-seen number validated in under {NEW_NUMBER_MAX * 1e6:.0f} µs ({new_cost})",
            new.median < NEW_NUMBER_MAX,
            measured=new_cost,
            ratio=f"{new.median / NEW_NUMBER_MAX:.2f}x",
            target=f"< {NEW_NUMBER_MAX * 1e6:.0f} µs",
        ),
    ]


def run() -> list[Verdict]:
    return bench_sync_send(bench_ceiling())
