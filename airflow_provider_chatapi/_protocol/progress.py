"""Progress of a long batch as a person reads it: what became of each send (sent, already sent by an earlier
try, refused, unknown), a line at most every ``every`` seconds or tenth of the batch, whichever comes later,
with the rate of what was sent and the time left; no I/O, the clock is passed in."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import NotSentError

__all__ = ["PROGRESS_EVERY", "Progress"]

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
