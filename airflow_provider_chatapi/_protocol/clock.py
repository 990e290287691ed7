"""The gateway's clock, read from the HTTP ``Date`` header of its answers, and an intent placed on it.

A card found after a lost answer counts as the lost send's only if the gateway queued it at or after the
send's intent. The gateway stamps its messages with its own clock, so the intent must be on that clock
too: ours plus a margin would let a card of an earlier run, queued shortly before, pass for this one.
Every answer carries ``Date`` (RFC 9110 requires it of a server with a clock), whole seconds, truncated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_chatapi._protocol.http import ApiResponse

__all__ = ["UNTIED_MARGIN", "Intent", "clock_offset", "intent_now"]


def clock_offset(response: ApiResponse) -> float | None:
    """Seconds to add to our clock to read the gateway's, from an answer just received; None without a
    readable ``Date``.

    ``Date`` is truncated to the second and stamped before the answer left, so the result is at most the
    true offset and less than a second (plus the answer's travel) below it: an intent placed with it is
    never later than the truth, and our own card is never excluded.
    """
    value = response.headers.get("date")
    if not value:
        return None
    try:
        stamped = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if stamped.tzinfo is None:  # an obsolete form without a zone: RFC 9110 says it is GMT
        return None
    return stamped.timestamp() - time.time()


UNTIED_MARGIN = 60
"""Seconds by which the clocks of two workers may differ (NTP keeps them far closer): an intent on a
worker's clock is placed on the gateway's with this much doubt either side."""


@dataclass(frozen=True, slots=True)
class Intent:
    """When a send was about to be made: ``at`` unix seconds on the gateway's clock when ``tied``, else on
    a worker's, off from the clock that reads it by up to ``margin`` seconds either way."""

    at: int
    tied: bool
    margin: int = 0

    @classmethod
    def on_worker_clock(cls, at: int) -> Intent:
        """An intent on the clock of the worker that wrote it, which a retry may read on another worker."""
        return cls(at, tied=False, margin=UNTIED_MARGIN)

    def on_gateway_clock(self, offset: float | None) -> int | None:
        """The second of the gateway's clock the intent is placed at (its card is stamped then or later, give
        or take :attr:`margin`); None when the intent is on a worker's clock and no answer tied the two."""
        if self.tied:
            return self.at
        return None if offset is None else math.floor(self.at + offset)

    def tied_by(self, offset: float | None) -> Intent | None:
        """This intent on the gateway's clock, read by the clock that wrote it (``offset``: the gateway's
        minus that clock's); None without an offset."""
        at = self.on_gateway_clock(offset)
        return None if at is None else Intent(at, tied=True)


def intent_now(offset: float | None) -> Intent:
    """An intent for a send about to be made: on the gateway's clock if ``offset`` is known."""
    now = time.time()
    if offset is None:
        return Intent.on_worker_clock(math.floor(now))
    return Intent(math.floor(now + offset), tied=True)
