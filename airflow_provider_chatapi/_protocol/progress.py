"""Progress of a long batch as a person reads it: a line at most every ``every`` seconds or tenth of the
batch, whichever comes later, with the rate and the time left; no I/O, the clock is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PROGRESS_EVERY", "Progress"]

PROGRESS_EVERY = 10.0
"""Seconds between two progress lines of one batch, at least."""


@dataclass
class Progress:
    """Counts the finished items of a batch of ``total`` started at ``started`` (monotonic seconds)."""

    total: int
    started: float
    every: float = PROGRESS_EVERY
    done: int = 0
    failed: int = 0
    _last_line: float = field(default=0.0, init=False)
    _last_done: int = field(default=0, init=False)

    def finished(self, now: float, *, ok: bool = True) -> str | None:
        """Count one finished item; the progress line when one is due, else None."""
        self.done += 1
        self.failed += not ok
        if self.done == self.total:
            return None  # the summary says the rest
        if now - max(self._last_line, self.started) < self.every or self.done - self._last_done < self.total / 10:
            return None
        self._last_line, self._last_done = now, self.done
        rate = self.done / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate
        failed = f", {self.failed} failed" if self.failed else ""
        share = self.done * 100 // self.total
        return f"{self.done}/{self.total} done ({share} %{failed}), {rate:.0f}/s, ~{left:.0f} s left"

    def summary(self, now: float) -> str:
        """The one line that closes the batch."""
        elapsed = max(now - self.started, 1e-9)
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.total} done{failed} in {elapsed:.1f} s ({self.done / elapsed:.0f}/s)"
