"""ChatApiHook over real HTTP against the loopback stand-in gateway."""

from __future__ import annotations

import json
import socket
import time

import pytest

from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    DeliveryUnknownError,
    GatewayUnavailableError,
    InvalidInputError,
    RateLimitedError,
    RejectedError,
)
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.testing import DEFAULT_TOKEN, Fault, StandInGateway


def test_send_contact_sends_exactly_the_documented_request(chatapi_default: StandInGateway) -> None:
    result = ChatApiHook().send_contact(["+7 900 111-11-11", "79002222222@c.us"], phone="+1 747 282 2486")

    (request,) = chatapi_default.requests
    assert (request.method, request.path) == ("POST", f"/instance{chatapi_default.instance_id}/sendContact")
    assert request.query == {"token": DEFAULT_TOKEN}
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"phone": "17472822486", "contactId": ["79001111111@c.us", "79002222222@c.us"]}
    (message,) = chatapi_default.messages
    assert result.id == message.id and result.id.startswith("true_17472822486@c.us_")
    assert result.sent and result.message == "Sent to 17472822486@c.us"
    assert message.type == "multi_vcard"


def test_instance_id_in_login_is_appended(gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "chatapi", "host": gateway.base_url, "login": gateway.instance_id, "password": gateway.token}
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_SPLIT", json.dumps(conn))
    ChatApiHook("chatapi_split").send_contact("79001111111", chat_id="120363041234567890@g.us")
    assert gateway.requests[0].path == f"/instance{gateway.instance_id}/sendContact"
    assert gateway.messages[0].chat_id == "120363041234567890@g.us"


def test_one_connection_is_reused_across_sends(chatapi_default: StandInGateway) -> None:
    hook = ChatApiHook()
    for phone in ("79001111111", "79002222222", "79003333333"):
        hook.send_contact("79009999999", phone=phone)
    ports = {request.client_port for request in chatapi_default.requests}
    assert len(chatapi_default.requests) == 3 and len(ports) == 1


def test_nothing_is_fetched_or_connected_until_the_first_call(chatapi_default: StandInGateway) -> None:
    hook = ChatApiHook()  # its connection leads to the stand-in, so a probe at construction would show there
    assert "settings" not in vars(hook) and "session" not in vars(hook)
    assert chatapi_default.requests == []
    hook.get_account_status()
    assert len(chatapi_default.requests) == 1  # and the same hook does reach it when used


def test_bad_input_fails_before_the_connection_is_read(chatapi_default: StandInGateway) -> None:
    hook = ChatApiHook()
    with pytest.raises(InvalidInputError, match=r"contact_ids\[1\]=None"):
        hook.send_contact(["79001111111", None], phone="79002222222")
    assert "settings" not in vars(hook)  # refused before the connection was read
    assert chatapi_default.requests == []
    hook.send_contact(["79001111111"], phone="79002222222")
    assert len(chatapi_default.requests) == 1


def test_missing_token_names_the_connection(gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", json.dumps({"conn_type": "chatapi", "host": gateway.api_url}))
    with pytest.raises(ConnectionConfigError, match=r"connection 'chatapi_default' password=None: .*token is missing"):
        ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert gateway.requests == []


def test_test_connection_probes_status_without_waking_up(chatapi_default: StandInGateway) -> None:
    ok, message = ChatApiHook().test_connection()
    assert ok and "'authenticated'" in message
    (request,) = chatapi_default.requests
    assert (request.method, request.endpoint, request.query.get("no_wakeup")) == ("GET", "status", "true")


def test_test_connection_reports_an_unlinked_instance(chatapi_default: StandInGateway) -> None:
    chatapi_default.account_status = "got qr code"
    ok, message = ChatApiHook().test_connection()
    assert not ok and "scan the QR code" in message


def test_test_connection_reports_a_wrong_token(gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json().replace(gateway.token, "wrong-token"))
    ok, message = ChatApiHook().test_connection()
    assert not ok and "HTTP 401" in message and "Wrong token" in message


def test_wrong_token_echoed_by_the_gateway_never_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    with StandInGateway(echo_token=True) as gateway:
        leaked = "leaky-token-123456"
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json().replace(gateway.token, leaked))
        with pytest.raises(AuthenticationError) as error:
            ChatApiHook().send_contact("79001111111", phone="79002222222")
        assert leaked in gateway.requests[0].query["token"]  # it did travel, and the gateway echoed it
    assert leaked not in str(error.value) and "Got: ***" in str(error.value)
    assert error.value.__cause__ is None


def test_timeout_from_the_connection_bounds_every_request(
    gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json(timeout=0.3))
    gateway.inject(Fault.slow(2.0))
    started = time.monotonic()
    with pytest.raises(DeliveryUnknownError, match="MAY HAVE BEEN QUEUED") as error:
        ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert time.monotonic() - started < 1.5
    assert "Read timed out" in str(error.value) and gateway.token not in str(error.value)
    assert len(gateway.requests_to("sendContact")) == 1  # a read timeout is never re-sent


def test_a_slow_answer_within_the_timeout_succeeds(chatapi_default: StandInGateway) -> None:
    chatapi_default.inject(Fault.slow(0.3))
    assert ChatApiHook().send_contact("79001111111", phone="79002222222").id == chatapi_default.messages[0].id


def test_hook_timeout_overrides_the_connection(gateway: StandInGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json(timeout=30))
    assert ChatApiHook(timeout=0.5, max_retries=0).settings.timeout == 0.5


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
    chatapi_default: StandInGateway, fault: Fault, error_class: type[Exception], said: str
) -> None:
    chatapi_default.inject(fault)
    with pytest.raises(error_class) as error:
        ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert said in str(error.value)
    assert len(chatapi_default.requests_to("sendContact")) == 1
    assert len(chatapi_default.messages) == (1 if fault.queue else 0)


@pytest.mark.parametrize("fault", [Fault.unavailable(), Fault.rate_limited(retry_after=0)])
def test_refusals_that_prove_nothing_was_queued_are_retried(chatapi_default: StandInGateway, fault: Fault) -> None:
    chatapi_default.inject(fault)
    result = ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert len(chatapi_default.requests_to("sendContact")) == 2
    assert [message.id for message in chatapi_default.messages] == [result.id]


def test_retry_after_is_honoured(chatapi_default: StandInGateway) -> None:
    chatapi_default.inject(Fault.rate_limited(retry_after=1))
    started = time.monotonic()
    ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert time.monotonic() - started >= 0.9
    assert len(chatapi_default.messages) == 1


def test_rate_limit_outlasting_the_retries_says_so(chatapi_default: StandInGateway) -> None:
    chatapi_default.inject(*[Fault.rate_limited(retry_after=0)] * 3)
    with pytest.raises(RateLimitedError, match="HTTP 429: the gateway said 'Too many requests") as error:
        ChatApiHook(max_retries=2).send_contact("79001111111", phone="79002222222")
    assert error.value.retry_after == 0
    assert len(chatapi_default.requests_to("sendContact")) == 3 and chatapi_default.messages == []


def test_refused_connection_is_unavailable_and_hides_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = {"conn_type": "chatapi", "host": f"http://127.0.0.1:{port}/instance1", "password": "refused-token-42"}
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", json.dumps(conn))
    with pytest.raises(GatewayUnavailableError, match="could not connect: NewConnectionError") as error:
        ChatApiHook(max_retries=1).send_contact("79001111111", phone="79002222222")
    assert "refused-token-42" not in str(error.value) and error.value.__cause__ is None


def test_repr_shows_no_token(chatapi_default: StandInGateway) -> None:
    hook = ChatApiHook()
    result = hook.send_contact("79001111111", phone="79002222222")
    for text in (repr(hook), repr(hook.settings), repr(result)):
        assert chatapi_default.token not in text
