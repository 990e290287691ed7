"""7. A paced fan-out, as the gateway sees it.

Item 3's ``asend_to_many(contacts, recipients, max_in_flight=20)``, with ``max_per_second=200``, to 3,000
recipients, against a stand-in in its own process that notes when each request arrived (``received_at`` in
its control API's listing). Two figures, from the same runs:

- 7a, the busiest sliding second at the gateway: the most arrivals in any ``[t, t + 1)``. Target: at most
  ``max_per_second``, in every run.
- 7b, the mean rate at the gateway (arrivals after the first, over the time from the first to the last),
  as a share of ``max_per_second``. Target: at least 95%, when the machine can go faster: the same
  fan-out without ``max_per_second``, interleaved with the paced runs, shows what it can do, and below
  twice the limit the machine, not the pacer, sets the rate (then "cannot tell").

Printed too: the same paced fan-out against a stand-in answering after 20 ms, where each of the pacer's
places serves a request every ``1 + round trip`` seconds: its share is expected near ``1 / 1.02``.
"""

from __future__ import annotations

import bisect
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from harness import (
    Sample,
    Verdict,
    chatapi_default,
    expect,
    expect_queued,
    heading,
    human_phone,
    interleaved,
    judged,
    print_samples,
    stand_in_control,
    stand_in_process,
)
from item_fan_out import FAN_OUT_MAX_IN_FLIGHT, hook_fan_out

if TYPE_CHECKING:
    from collections.abc import Sequence

PACED_RECIPIENTS = 3_000
PER_SECOND = 200
PACED_ROUNDS = 2
SLOW_DELAY = 0.02
MIN_SHARE = 0.95
HEADROOM = 2.0  # the unpaced rate must be this many times the limit for 7b to judge the pacer


def paced_fan_out(connection: dict[str, Any], per_second: float | None) -> tuple[int, float]:
    """One fan-out to :data:`PACED_RECIPIENTS` with a fresh stand-in record; the gateway's busiest sliding
    second and its mean rate (requests a second)."""
    phones = [human_phone(index) for index in range(PACED_RECIPIENTS)]
    stand_in_control(connection, "reset", method="POST")
    expect_queued(hook_fan_out(phones, max_per_second=per_second), len(phones))
    listing = stand_in_control(connection, "requests?endpoint=sendContact")["requests"]
    arrivals = sorted(request["received_at"] for request in listing)
    expect(len(arrivals) == len(phones), f"{len(arrivals)} sends reached the gateway for {len(phones)} recipients")
    return busiest_second(arrivals), (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def busiest_second(arrivals: Sequence[float]) -> int:
    """The most of the sorted ``arrivals`` in any one-second window ``[t, t + 1)``."""
    return max(bisect.bisect_left(arrivals, arrival + 1.0) - index for index, arrival in enumerate(arrivals))


def run() -> list[Verdict]:
    heading(
        f"7. Paced fan-out ({PACED_RECIPIENTS:,} recipients, max_per_second={PER_SECOND},"
        f" max_in_flight={FAN_OUT_MAX_IN_FLIGHT}, {PACED_ROUNDS} rounds, stand-in in its own process)"
    )
    started = time.perf_counter()
    with stand_in_process() as connection, chatapi_default(connection):
        runs = interleaved(
            PACED_ROUNDS,
            {
                "paced": partial(paced_fan_out, connection, PER_SECOND),
                "unpaced": partial(paced_fan_out, connection, None),
            },
        )
    with stand_in_process(delay=SLOW_DELAY) as connection, chatapi_default(connection):
        slow = [paced_fan_out(connection, PER_SECOND) for _ in range(PACED_ROUNDS)]
    paced_busiest = max(busiest for busiest, _ in runs["paced"] + slow)
    paced = Sample("  mean rate at the gateway, paced", [rate for _, rate in runs["paced"]], "/s", 1.0)
    unpaced = Sample(
        "  mean rate at the gateway, unpaced (the machine)", [rate for _, rate in runs["unpaced"]], "/s", 1.0
    )
    slow_rate = Sample(
        f"  mean rate, paced, gateway delay {SLOW_DELAY * 1e3:.0f} ms", [rate for _, rate in slow], "/s", 1.0
    )
    print_samples(paced, unpaced, slow_rate)
    print(
        f"  busiest sliding second: {[busiest for busiest, _ in runs['paced']]} paced,"
        f" {[busiest for busiest, _ in slow]} with the 20 ms gateway, {[busiest for busiest, _ in runs['unpaced']]}"
        f" unpaced; share of the limit with the 20 ms gateway {slow_rate.median / PER_SECOND:.1%}"
        f" (1 / 1.02 = {1 / (1 + SLOW_DELAY):.1%}); {time.perf_counter() - started:.0f} s"
    )
    window_ok = paced_busiest <= PER_SECOND
    share = paced.median / PER_SECOND
    verdicts = [
        judged(
            "7a busiest second, paced",
            f"at most {paced_busiest} requests in any sliding second (target <= {PER_SECOND})",
            window_ok,
            measured=f"{paced_busiest} in the busiest second of {PACED_ROUNDS * 2} paced runs",
            ratio=f"{paced_busiest / PER_SECOND:.3f}x",
            target=f"<= {PER_SECOND}",
        )
    ]
    measured = f"{paced.median:.0f}/s of {PER_SECOND}/s; unpaced {unpaced.median:.0f}/s"
    if unpaced.median < HEADROOM * PER_SECOND:
        print(f"  7b: the machine reaches {unpaced.median:.0f}/s unpaced, under {HEADROOM:.0f}x the limit: cannot tell")
        verdicts.append(Verdict("7b paced rate / limit", measured, f"{share:.3f}x", f">= {MIN_SHARE}x", None))
    else:
        claim = f"{share:.1%} of the limit at the gateway (target >= {MIN_SHARE:.0%})"
        verdicts.append(
            judged(
                "7b paced rate / limit",
                claim,
                share >= MIN_SHARE,
                measured=measured,
                ratio=f"{share:.3f}x",
                target=f">= {MIN_SHARE}x",
            )
        )
    return verdicts
