"""The fault table: every failure the gateway shows, and what comes of it through the hook and through a
real task, for each dialect (classic and 1msg), plus what only 1msg shows.

For each scenario it states how many cards the stand-in queued and how many sendContact requests it
received: a card is queued once where the send succeeds, and never twice. The hook's side runs in
``tests/unit/hooks/test_faults.py``, the task's in ``tests/dags/test_faults.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
)
from airflow_provider_chatapi.testing import Fault
from tests.helpers import HAS_STATE_STORE


@dataclass(frozen=True)
class Outcome:
    state: str  # "success" or "failed" for a task; for the hook, "success" or the error's class name
    cards: int  # cards the stand-in queued
    sends: int  # sendContact requests it received


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: tuple[Fault, ...]
    says: str  # what the hook's error (and so the task log) says; "" when the send succeeds
    hook: Outcome  # one ChatApiHook.send_contact or asend_contact call (timeout 0.5 s, 2 HTTP retries)
    task_with_store: Outcome  # the drill DAG's task (the same settings, 1 task retry), Airflow >= 3.3
    task_without_store: Outcome  # the same task before Airflow 3.3

    def task(self) -> Outcome:
        return self.task_with_store if HAS_STATE_STORE else self.task_without_store


UNKNOWN = DeliveryUnknownError.__name__
SENT_ONCE = Outcome("success", 1, 1)
SCENARIOS = [
    Scenario("answer lost after queueing: read timeout", (Fault.slow(1.5),), "timed out",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("connection reset after queueing", (Fault.reset_after_queueing(),), "sent, but no answer arrived",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("connection reset before queueing", (Fault.reset_before_queueing(),), "sent, but no answer arrived",
             Outcome(UNKNOWN, 0, 1), Outcome("success", 1, 2), Outcome("failed", 0, 1)),
    Scenario("500 after queueing", (Fault.server_error(500),), "HTTP 500: the gateway said 'Internal server error'",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("500 before queueing", (Fault.server_error(500, queued=False),), "HTTP 500",
             Outcome(UNKNOWN, 0, 1), Outcome("success", 1, 2), Outcome("failed", 0, 1)),
    Scenario("garbage 200 after queueing", (Fault.garbage(),), "not a JSON object",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("proxy's HTML 502 page", (Fault.bad_gateway_page(),), "HTTP 502: body '502 Bad Gateway nginx'",
             Outcome(UNKNOWN, 1, 1), Outcome("success", 1, 1), Outcome("failed", 1, 1)),
    Scenario("429 with Retry-After, then success", (Fault.rate_limited(retry_after=1),), "",
             Outcome("success", 1, 2), Outcome("success", 1, 2), Outcome("success", 1, 2)),
    Scenario("503 then success", (Fault.unavailable(),), "",
             Outcome("success", 1, 2), Outcome("success", 1, 2), Outcome("success", 1, 2)),
    Scenario("slow answer within the timeout", (Fault.slow(0.2),), "", SENT_ONCE, SENT_ONCE, SENT_ONCE),
    Scenario("rate limited past every retry", (Fault.rate_limited(retry_after=0),) * 6,
             "HTTP 429: the gateway said 'Too many requests, slow down'",
             Outcome(RateLimitedError.__name__, 0, 3), Outcome("failed", 0, 6), Outcome("failed", 0, 6)),
    # A relative Location: the same sendContact without the token. Followed, it would be POSTed again.
    Scenario("307 redirect", (Fault.redirect(location="sendContact"),), "redirects to 'sendContact'",
             Outcome(RejectedError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
    Scenario("rejected: sent false", (Fault.rejected("Wrong chatId format."),),
             "the gateway said 'Wrong chatId format.'",
             Outcome(RejectedError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
]  # fmt: skip
ONEMSG_ONLY = [
    Scenario("24-hour window closed", (Fault.window_closed(), Fault.window_closed()), "last 24 hours",
             Outcome(WindowClosedError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
    Scenario("403 plain text: trial channel", (Fault.forbidden_text("Channel is in trial mode"),),
             "body 'Channel is in trial mode'",
             Outcome(AuthenticationError.__name__, 0, 1), Outcome("failed", 0, 1), Outcome("failed", 0, 1)),
    Scenario("429 without Retry-After, then success", (Fault.rate_limited(retry_after=None),), "",
             Outcome("success", 1, 2), Outcome("success", 1, 2), Outcome("success", 1, 2)),
]  # fmt: skip
CASES = [
    *(pytest.param(dialect, scenario, id=f"{dialect}: {scenario.name}") for dialect in ("chatapi", "1msg")
      for scenario in SCENARIOS),
    *(pytest.param("1msg", scenario, id=f"1msg: {scenario.name}") for scenario in ONEMSG_ONLY),
]  # fmt: skip
