"""The hook's transports and retry policy over real HTTP: timeouts, what is never re-sent, what is retried
and how long it waits, and a refused connection; on both dialects."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    GatewayUnavailableError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
)
from airflow_provider_chatapi.hooks import _http
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.operators.chatapi import SendContactOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway
from tests.helpers import ANN_CARD, free_port


def test_timeout_from_the_connection_bounds_every_request(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in()
    connect("chatapi_default", gateway, extra={"timeout": 0.3})
    gateway.inject(Fault.slow(2.0))
    started = time.monotonic()
    with pytest.raises(DeliveryUnknownError, match="MAY HAVE BEEN QUEUED") as error:
        ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert time.monotonic() - started < 1.5
    assert "Read timed out" in str(error.value) and gateway.token not in str(error.value)
    assert len(gateway.requests_to("sendContact")) == 1  # a read timeout is never re-sent


def test_a_slow_answer_within_the_timeout_succeeds(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    gateway.inject(Fault.slow(0.3))
    assert ChatApiHook().send_contact("79001111111", phone="79002222222").id == gateway.messages[0].id


@pytest.mark.parametrize(
    ("fault", "error_class", "said"),
    [
        (Fault.server_error(500), DeliveryUnknownError, "HTTP 500: the gateway said 'Internal server error'"),
        (Fault.bad_gateway_page(), DeliveryUnknownError, "HTTP 502: body '502 Bad Gateway nginx'"),
        (Fault.server_error(504), DeliveryUnknownError, "HTTP 504"),
        (Fault.garbage(), DeliveryUnknownError, "not a JSON object"),
        (Fault.reset_after_queueing(), DeliveryUnknownError, "Connection reset by peer"),
        (Fault.rejected("Wrong chatId format."), RejectedError, "the gateway said 'Wrong chatId format.'"),
    ],
)
def test_failures_that_are_never_retried(
    stand_in: Callable[..., StandInGateway], fault: Fault, error_class: type[Exception], said: str
) -> None:
    gateway = stand_in()
    gateway.inject(fault)
    with pytest.raises(error_class) as error:
        ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert said in str(error.value)
    assert len(gateway.requests_to("sendContact")) == 1
    assert len(gateway.messages) == (1 if fault.queue else 0)


@pytest.mark.parametrize("fault", [Fault.unavailable(), Fault.rate_limited(retry_after=0)])
def test_refusals_that_prove_nothing_was_queued_are_retried(
    stand_in: Callable[..., StandInGateway], quick_retries: list[float], fault: Fault
) -> None:
    gateway = stand_in()
    gateway.inject(fault)
    result = ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert len(gateway.requests_to("sendContact")) == 2
    assert [message.id for message in gateway.messages] == [result.id]


def test_retry_after_is_honoured(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    gateway.inject(Fault.rate_limited(retry_after=1))
    started = time.monotonic()
    ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert time.monotonic() - started >= 0.9
    assert len(gateway.messages) == 1


def test_rate_limit_outlasting_the_retries_says_so(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    gateway.inject(*[Fault.rate_limited(retry_after=0)] * 3)
    with pytest.raises(RateLimitedError, match="HTTP 429: the gateway said 'Too many requests") as error:
        ChatApiHook(max_retries=2).send_contact("79001111111", phone="79002222222")
    assert error.value.retry_after == 0
    assert len(gateway.requests_to("sendContact")) == 3 and gateway.messages == []


def test_refused_connection_is_unavailable_and_hides_the_token(
    connect: Callable[..., None], quick_retries: list[float]
) -> None:
    port = free_port()
    connect("chatapi_default", host=f"http://127.0.0.1:{port}/instance1", password="refused-token-42")
    with pytest.raises(GatewayUnavailableError, match="could not connect: NewConnectionError") as error:
        ChatApiHook(max_retries=1).send_contact("79001111111", phone="79002222222")
    assert "refused-token-42" not in str(error.value) and error.value.__cause__ is None


# ---- 1msg -----------------------------------------------------------------------------------------


def test_window_closed_fails_at_once_after_one_request(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")
    gateway.inject(Fault.window_closed(), Fault.window_closed())
    with pytest.raises(WindowClosedError, match="24 hours"):
        ChatApiHook(max_retries=3).send_contact(contacts=[ANN_CARD], phone="17472822486")
    assert len(gateway.requests_to("sendContact")) == 1
    gateway.reset()
    gateway.inject(Fault.window_closed())
    with pytest.raises(AirflowFailException, match="only a template message"):
        SendContactOperator(task_id="send", contacts=[ANN_CARD], phone="17472822486").execute({})  # type: ignore[arg-type]
    assert len(gateway.requests_to("sendContact")) == 1 and gateway.messages == []


def test_429_without_retry_after_is_retried_with_backoff(
    stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "BACKOFF_FACTOR", 0.1)  # the first retry waits the factor itself
    gateway = stand_in("1msg")
    gateway.inject(Fault.rate_limited(retry_after=None))
    started = time.monotonic()
    result = ChatApiHook(max_retries=2).send_contact(contacts=[ANN_CARD], phone="17472822486")
    waited = time.monotonic() - started
    assert len(gateway.requests_to("sendContact")) == 2 and [m.id for m in gateway.messages] == [result.id]
    assert _http.BACKOFF_FACTOR <= waited < _http.BACKOFF_FACTOR + 2


def test_403_plain_text_is_not_retried_and_says_what_1msg_said(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")
    gateway.inject(Fault.forbidden_text("Channel is in trial mode"))
    with pytest.raises(AuthenticationError, match=r"Channel is in trial mode.*trial channel"):
        ChatApiHook(max_retries=3).send_contact(contacts=[ANN_CARD], phone="17472822486")
    assert len(gateway.requests) == 1


def test_httpx_request_lines_reach_no_handler_unless_debug_is_on(stand_in: Callable[..., StandInGateway]) -> None:
    """Airflow 2.11's task log handlers take any record that reaches them: a fan-out to 2,000 wrote about
    1,550 "HTTP Request: POST …" lines a try, lowered to DEBUG but never dropped."""
    import asyncio
    import logging

    stand_in()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()  # level NOTSET: takes whatever reaches it, as Airflow 2.11's handlers do
    handler.emit = seen.append  # type: ignore[method-assign]
    httpx_log = logging.getLogger("httpx")
    level = httpx_log.level
    httpx_log.addHandler(handler)

    async def fan_out() -> None:
        hook = ChatApiHook()
        try:
            await hook.asend_to_many(["79009999999"], ["79001111111", "79002222222"])
        finally:
            await hook.aclose()

    try:
        httpx_log.setLevel(logging.INFO)
        asyncio.run(fan_out())
        assert [record.getMessage() for record in seen if "HTTP Request" in record.getMessage()] == []
        httpx_log.setLevel(logging.DEBUG)
        asyncio.run(fan_out())
        requests = [record for record in seen if "HTTP Request" in record.getMessage()]
        assert len(requests) == 2 and {record.levelno for record in requests} == {logging.DEBUG}
    finally:
        httpx_log.removeHandler(handler)
        httpx_log.setLevel(level)
