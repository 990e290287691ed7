"""Requests built and responses read by the pure protocol layer, for every failure shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.answers import connection_failed, parse_retry_after, response_lost
from airflow_provider_chatapi._protocol.classic import CLASSIC
from airflow_provider_chatapi._protocol.connection import settings_from_connection
from airflow_provider_chatapi._protocol.http import ApiResponse, read_response
from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    DeliveryUnknownError,
    GatewayError,
    GatewayUnavailableError,
    InvalidInputError,
    NotSentError,
    RateLimitedError,
    RejectedError,
)
from airflow_provider_chatapi.hooks.chatapi import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, SendResult

from .conftest import classic_request

TOKEN = "s3cr3t+token/with=chars"


def response(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> ApiResponse:
    raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    raw = raw.encode() if isinstance(raw, str) else raw
    return read_response(status, headers or {}, raw, secret=TOKEN)


# ---- requests ------------------------------------------------------------------------------------


def test_send_contact_to_a_phone_is_exactly_the_documented_body() -> None:
    request = classic_request(["+7 900 111-11-11", 79002222222], phone="+1 747 282 2486")
    assert (request.method, request.endpoint, dict(request.params)) == ("POST", "sendContact", {})
    assert request.json == {"phone": "17472822486", "contactId": ["79001111111@c.us", "79002222222@c.us"]}
    assert request.has_side_effect


def test_send_contact_to_a_chat_with_a_quote() -> None:
    request = classic_request(
        "79001111111", chat_id="17680561234-1479621234@g.us", quoted_message_id="false_17472822486@c.us_DF38E6A2"
    )
    assert request.json == {
        "chatId": "17680561234-1479621234@g.us",
        "contactId": ["79001111111@c.us"],
        "quotedMsgId": "false_17472822486@c.us_DF38E6A2",
    }


@pytest.mark.parametrize(
    ("target", "given"),
    [({}, "neither"), ({"phone": "79001111111", "chat_id": "79001111111@c.us"}, "both")],
)
def test_exactly_one_recipient(target: dict[str, str], given: str) -> None:
    with pytest.raises(InvalidInputError, match=f"give exactly one of them, got {given}") as error:
        classic_request(["79001111111"], **target)
    assert error.value.field == "phone/chat_id"


def test_status_probe_does_not_wake_the_instance() -> None:
    request = CLASSIC.status_request()
    assert (request.method, request.endpoint, dict(request.params)) == ("GET", "status", {"no_wakeup": "true"})
    assert not request.has_side_effect


# ---- responses -----------------------------------------------------------------------------------


def test_accepted_send() -> None:
    result = CLASSIC.parse_send(
        response(200, {"sent": True, "message": "Sent to 17472822486@c.us", "id": "true_1_ABC", "queueNumber": 4})
    )
    assert result == SendResult(id="true_1_ABC", sent=True, message="Sent to 17472822486@c.us", queue_number=4)


def test_accepted_send_without_queue_number() -> None:
    assert CLASSIC.parse_send(response(200, {"sent": True, "id": "true_1_ABC"})).queue_number is None


FAILURES: list[tuple[str, ApiResponse, type[Exception], str]] = [
    (
        "sent false",
        response(200, {"sent": False, "message": "Wrong chatId format."}),
        RejectedError,
        "the gateway said 'Wrong chatId format.'",
    ),
    ("error key on 200", response(200, {"error": "Instance is not paid"}), RejectedError, "Instance is not paid"),
    (
        "401",
        response(401, {"error": "Wrong token. Please provide token as a GET parameter."}),
        AuthenticationError,
        "HTTP 401: the gateway said 'Wrong token.",
    ),
    ("403", response(403, b"Forbidden"), AuthenticationError, "HTTP 403: body 'Forbidden'"),
    ("404", response(404, {"error": "Unknown method"}), RejectedError, "HTTP 404"),
    ("429", response(429, {"error": "Too many requests"}, {"Retry-After": "7"}), RateLimitedError, "HTTP 429"),
    (
        "503 html",
        response(503, "<html><h1>Service Unavailable</h1></html>", {"Content-Type": "text/html"}),
        GatewayUnavailableError,
        "body 'Service Unavailable'",
    ),
    ("500", response(500, {"error": "Internal error"}), DeliveryUnknownError, "MAY HAVE BEEN QUEUED"),
    (
        "502 proxy page",
        response(502, "<html><title>502 Bad Gateway</title><center>nginx</center></html>"),
        DeliveryUnknownError,
        "502 Bad Gateway nginx",
    ),
    ("504 empty", response(504), DeliveryUnknownError, "an empty body"),
    ("200 empty", response(200), DeliveryUnknownError, "not a JSON object: an empty body"),
    ("200 html", response(200, "<html>oops</html>"), DeliveryUnknownError, "not a JSON object: body 'oops'"),
    ("200 json list", response(200, [1, 2]), DeliveryUnknownError, "not a JSON object"),
    ("200 json string", response(200, b'"ok"'), DeliveryUnknownError, "not a JSON object"),
    ("200 without id", response(200, {"sent": True, "message": "ok"}), DeliveryUnknownError, "a message id: body"),
    ("200 empty id", response(200, {"sent": True, "id": ""}), DeliveryUnknownError, "without 'sent: true'"),
    ("200 sent as text", response(200, {"sent": "true", "id": "true_1_A"}), DeliveryUnknownError, "'sent: true'"),
    ("200 nothing known", response(200, {}), DeliveryUnknownError, "without 'sent: true' and a message id"),
    (
        "307 redirect",
        response(307, b"", {"Location": f"https://elsewhere.example/instance1/sendContact?token={TOKEN}"}),
        RejectedError,
        "redirects to 'https://elsewhere.example/instance1/sendContact?token=***'",
    ),
    ("302 without a location", response(302, b""), RejectedError, "redirects to 'nowhere'"),
]


@pytest.mark.parametrize(("name", "answer", "error_class", "said"), FAILURES, ids=[f[0] for f in FAILURES])
def test_every_failure_shape_is_classified(
    name: str, answer: ApiResponse, error_class: type[Exception], said: str
) -> None:
    with pytest.raises(error_class) as error:
        CLASSIC.parse_send(answer)
    assert type(error.value) is error_class
    assert said in str(error.value)
    assert error.value.status_code == answer.status_code  # type: ignore[attr-defined]
    assert str(error.value).startswith(f"Chat API sendContact: HTTP {answer.status_code}: ")


def test_transient_and_permanent_refusals() -> None:
    assert RateLimitedError.transient and GatewayUnavailableError.transient
    assert not AuthenticationError.transient and not RejectedError.transient
    assert not issubclass(DeliveryUnknownError, NotSentError)


def test_long_bodies_are_shortened() -> None:
    with pytest.raises(DeliveryUnknownError) as error:
        CLASSIC.parse_send(response(500, "x" * 5000))
    assert len(str(error.value)) < 400


def test_retry_after_in_seconds_and_as_a_date() -> None:
    with pytest.raises(RateLimitedError) as error:
        CLASSIC.parse_send(response(429, {"error": "slow down"}, {"retry-after": "12"}))
    assert error.value.retry_after == 12.0
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, tz=UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_token_echoed_by_the_gateway_is_scrubbed_before_parsing() -> None:
    for echoed in (TOKEN, "s3cr3t%2Btoken%2Fwith%3Dchars", "s3cr3t%2Btoken/with%3Dchars"):
        with pytest.raises(AuthenticationError) as error:
            CLASSIC.parse_send(response(401, {"error": f"Wrong token {echoed}"}))
        assert "s3cr3t" not in str(error.value)
        assert "***" in str(error.value)


def test_status_probe_answers() -> None:
    assert CLASSIC.parse_status(response(200, {"accountStatus": "got qr code"})) == "got qr code"
    with pytest.raises(GatewayError, match="without 'accountStatus'"):
        CLASSIC.parse_status(response(200, {"status": "?"}))
    # A GET has no side effect: a 500 there is a plain gateway error, not "may have been queued".
    with pytest.raises(GatewayError) as error:
        CLASSIC.parse_status(response(500, {"error": "down"}))
    assert type(error.value) is GatewayError


def test_account_statuses_are_explained() -> None:
    assert CLASSIC.describe_status("authenticated")[0]
    ok, message = CLASSIC.describe_status("got qr code")
    assert not ok and "scan the QR code" in message
    assert not CLASSIC.describe_status("not_paid")[0]


def test_transport_failures_say_whether_the_message_may_be_queued() -> None:
    send = classic_request("79001111111", phone="79002222222")
    assert isinstance(connection_failed(send, "refused"), GatewayUnavailableError)
    assert isinstance(response_lost(send, "read timeout"), DeliveryUnknownError)
    assert isinstance(response_lost(CLASSIC.status_request(), "read timeout"), GatewayUnavailableError)


# ---- connection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "login", "port", "api_url"),
    [
        ("https://api.chat-api.com/instance123456", None, None, "https://api.chat-api.com/instance123456"),
        ("https://api.chat-api.com/instance123456/", "", None, "https://api.chat-api.com/instance123456"),
        ("https://api.chat-api.com", "123456", None, "https://api.chat-api.com/instance123456"),
        ("https://api.chat-api.com/", "instance123456", None, "https://api.chat-api.com/instance123456"),
        ("https://eu12.chat-api.com/instance7", "7", None, "https://eu12.chat-api.com/instance7"),
        ("api.chat-api.com/instance123456", None, None, "https://api.chat-api.com/instance123456"),
        ("http://127.0.0.1:8080/instance1", None, None, "http://127.0.0.1:8080/instance1"),
        ("http://127.0.0.1", "1", 8080, "http://127.0.0.1:8080/instance1"),
        ("http://127.0.0.1:9090", "1", 8080, "http://127.0.0.1:9090/instance1"),
        (None, "123456", None, "https://api.1msg.io/123456"),  # no host: 1msg, the live service
        ("  ", "instance123456", None, "https://api.1msg.io/123456"),
    ],
)
def test_api_url_forms(host: str | None, login: str | None, port: int | None, api_url: str) -> None:
    settings = settings_from_connection(conn_id="c", host=host, login=login, password="t0ken1", port=port)
    assert settings.api_url == api_url


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"password": None}, "connection 'c' password", "API token is missing"),
        ({"password": "  "}, "connection 'c' password", "API token is missing"),
        ({"host": "ftp://api.chat-api.com"}, "connection 'c' host", "https:// or http://"),
        ({"host": "https://"}, "connection 'c' host", "no host name"),
        ({"host": "https://api.chat-api.com:99999"}, "connection 'c' host", "port"),
        ({"host": "https://api.chat-api.com/instance1#x"}, "connection 'c' host", "must not carry"),
        ({"login": "abc"}, "connection 'c' login", "instance id is a number"),
        ({"login": None}, "connection 'c' login", "instance id is missing"),
        ({"login": " ", "host": "https://api.1msg.io/"}, "connection 'c' login", "instance id is missing"),
        ({"login": None, "host": "http://gateway.internal:8080"}, "connection 'c' login", "instance id is missing"),
        ({"login": None, "extra": {"dialect": "chatapi"}}, "connection 'c' login", "instance id is missing"),
        ({"extra": {"dialect": "whatsapp"}}, "connection 'c' extra 'dialect'", "'chatapi' .* or '1msg'"),
        ({"host": "https://api.chat-api.com/instance1", "login": "2"}, "connection 'c' login", "differs"),
        ({"extra": {"timeout": "soon"}}, "connection 'c' extra 'timeout'", "float"),
        ({"extra": {"timeout": 0}}, "connection 'c' extra 'timeout'", "at least"),
        ({"extra": {"max_retries": -1}}, "connection 'c' extra 'max_retries'", "at least 0"),
        ({"extra": {"max_retries": 1.5}}, "connection 'c' extra 'max_retries'", "int"),
        ({"extra": {"max_retries": True}}, "connection 'c' extra 'max_retries'", "int"),
    ],
)
def test_bad_connection_names_the_connection_and_field(fields: dict[str, Any], field: str, problem: str) -> None:
    arguments = {"conn_id": "c", "host": None, "login": "1", "password": "t0ken1", **fields}
    with pytest.raises(ConnectionConfigError, match=problem) as error:
        settings_from_connection(**arguments)
    assert error.value.field == field


def test_a_token_pasted_into_the_host_is_not_echoed() -> None:
    with pytest.raises(ConnectionConfigError) as error:
        settings_from_connection(
            conn_id="c", host="https://api.chat-api.com/instance1?token=pasted-secret", login=None, password="t"
        )
    assert "pasted-secret" not in str(error.value)
    with pytest.raises(ConnectionConfigError) as error:
        settings_from_connection(
            conn_id="c", host="https://user:pasted-secret@api.chat-api.com", login=None, password="t"
        )
    assert "pasted-secret" not in str(error.value)


def test_extra_fields_new_and_legacy_names() -> None:
    settings = settings_from_connection(
        conn_id="c", host=None, login="1", password="t", extra={"timeout": "2.5", "extra__chatapi__max_retries": "0"}
    )
    assert (settings.timeout, settings.max_retries) == (2.5, 0)
    default = settings_from_connection(conn_id="c", host=None, login="1", password="t", extra={"timeout": ""})
    assert (default.timeout, default.max_retries) == (DEFAULT_TIMEOUT, DEFAULT_MAX_RETRIES)


def test_settings_repr_hides_the_token() -> None:
    settings = settings_from_connection(conn_id="c", host=None, login="1", password=TOKEN)
    assert TOKEN not in repr(settings)
    assert TOKEN not in settings.url("sendContact")
