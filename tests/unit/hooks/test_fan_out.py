"""ChatApiHook.asend_to_many: a concurrent fan-out, bounded, in order, each card once; every input checked
before the first request, every outcome reported, every send it started waited for."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.record import Ledger
from airflow_provider_chatapi.exceptions import FanOutError, InvalidInputError, RejectedError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import DictStore

RECIPIENTS = [f"+7 900 200-{n // 100:02d}-{n % 100:02d}" for n in range(200)]


def test_fan_out_of_200_keeps_order_bound_and_sends_each_once(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in(delay=0.02)

    results = asyncio.run(ChatApiHook().asend_to_many(["79009999999"], RECIPIENTS, max_in_flight=20))

    by_chat = {message.chat_id: message.id for message in gateway.messages}
    chats = [f"7900200{n:04d}@c.us" for n in range(200)]
    assert [result.id for result in results] == [by_chat[chat] for chat in chats]
    assert sorted(message.chat_id for message in gateway.messages) == sorted(chats)  # each exactly once
    assert 2 <= gateway.peak_in_flight <= 20
    assert len({request.client_port for request in gateway.requests}) <= 20  # one pool of connections


def test_fan_out_validates_everything_before_the_first_request(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    with pytest.raises(InvalidInputError, match=r"recipients\[2\]='79001000001': names the chat"):
        asyncio.run(ChatApiHook().asend_to_many("79009999999", ["79001000001", "79001000002", "79001000001"]))
    with pytest.raises(InvalidInputError, match=r"recipients\[1\]='abc'"):
        asyncio.run(ChatApiHook().asend_to_many("79009999999", "79001000001, abc"))
    assert gateway.requests == []


def test_fan_out_reports_every_outcome_in_order(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    gateway.inject(Fault.rejected("Wrong chatId format."))
    with pytest.raises(FanOutError, match=r"1 of 3 sends failed: .*Wrong chatId format") as error:
        asyncio.run(ChatApiHook().asend_to_many("79009999999", ["79001000001", "79001000002", "79001000003"]))
    outcomes = error.value.outcomes
    assert sum(isinstance(outcome, RejectedError) for outcome in outcomes) == 1
    sent = {outcome.id for outcome in outcomes if not isinstance(outcome, RejectedError)}
    assert sent == {message.id for message in gateway.messages} and len(sent) == 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_the_hook_checks_max_in_flight_as_the_operator_does(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match=f"max_in_flight={bad!r}: must be a whole number from 1 to 1,000"):
        asyncio.run(ChatApiHook().asend_to_many(["79001111111"], ["79002222222"], max_in_flight=bad))


class _BrokenForOneChat(Ledger):
    """A ledger with a bug that shows for one recipient only."""

    def __init__(self, broken_chat: str) -> None:
        super().__init__(DictStore())
        self._broken_chat = broken_chat

    def recorded(self, send: Any) -> Any:
        if send.chat_id == self._broken_chat:
            raise RuntimeError("a bug in one send")
        return super().recorded(send)


def test_a_fan_out_waits_for_every_send_it_started(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    hook = ChatApiHook()

    async def fan_out() -> tuple[FanOutError, float]:
        started = time.monotonic()
        gateway.inject(Fault.slow(0.4))
        try:
            with pytest.raises(FanOutError) as caught:
                await hook.asend_to_many(
                    ["79001111111"], ["79003333333", "79002222222"], ledger=_BrokenForOneChat("79003333333@c.us")
                )
            return caught.value, time.monotonic() - started
        finally:
            await hook.aclose()

    failure, waited = asyncio.run(fan_out())
    assert waited >= 0.4  # the slow send was waited for, not abandoned
    error, result = failure.outcomes
    assert isinstance(error, RuntimeError) and result.id == gateway.messages[0].id


def test_a_long_fan_out_logs_progress_not_a_line_per_recipient(
    stand_in: Callable[..., StandInGateway], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_chatapi.hooks import _http
    from airflow_provider_chatapi.hooks._http import Progress

    monkeypatch.setattr(_http, "Progress", functools.partial(Progress, every=0.0))  # every tenth, however quick
    stand_in()
    recipients = [f"7900{index:07d}" for index in range(300)]

    log = logging.getLogger("test.chatapi.fan_out")

    async def send() -> None:
        hook = ChatApiHook()
        hook._log = log  # Airflow's LoggingMixin logs through this logger once set
        try:
            await hook.asend_to_many(["79001111111"], recipients, max_in_flight=20)
        finally:
            await hook.aclose()

    with caplog.at_level(logging.DEBUG, logger=log.name), caplog.at_level(logging.DEBUG, logger="httpx"):
        asyncio.run(send())
    ours = [record for record in caplog.records if record.name == log.name]
    lines = [record.getMessage() for record in ours if record.levelno >= logging.INFO]
    assert len(ours) > len(lines)  # the cards' own lines are there, at DEBUG
    requests = [record for record in caplog.records if record.name == "httpx"]
    assert len(requests) == 300 and {record.levelno for record in requests} == {logging.DEBUG}
    fan_out = [line for line in lines if line.startswith("Chat API fan-out: ")]
    assert re.fullmatch(r"Chat API fan-out: 300 in [0-9.]+ s: 300 sent \([0-9]+/s\)", fan_out[-1])
    assert 5 <= len(fan_out) <= 11 and len(lines) == len(fan_out)  # nothing per recipient
