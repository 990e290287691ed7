"""The classic dialect: the requests it builds and every shape of answer it reads, for sends, the status
probe, and the history and queue a lost answer is looked up in."""

from __future__ import annotations

import pytest

from airflow_provider_chatapi._protocol import classic
from airflow_provider_chatapi._protocol.classic import CLASSIC
from airflow_provider_chatapi._protocol.dialect import parse_message_history
from airflow_provider_chatapi._protocol.http import ApiResponse
from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    GatewayError,
    GatewayUnavailableError,
    RateLimitedError,
    RejectedError,
)
from airflow_provider_chatapi.hooks.chatapi import SendResult
from tests.helpers import TOKEN, classic_request, response

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


def test_status_probe_does_not_wake_the_instance() -> None:
    request = CLASSIC.status_request()
    assert (request.method, request.endpoint, dict(request.params)) == ("GET", "status", {"no_wakeup": "true"})
    assert not request.has_side_effect


# ---- answers -------------------------------------------------------------------------------------


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


def test_long_bodies_are_shortened() -> None:
    with pytest.raises(DeliveryUnknownError) as error:
        CLASSIC.parse_send(response(500, "x" * 5000))
    assert len(str(error.value)) < 400


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


def test_history_and_queue_answers_are_read() -> None:
    history = ApiResponse(200, {}, b'{"messages": [{"id": "a"}, 3], "lastMessageNumber": 1}', secret="t")
    assert parse_message_history(history).entries == [{"id": "a"}]
    queue = ApiResponse(200, {}, b'{"totalMessages": 0, "first100": []}', secret="t")
    assert classic.parse_message_queue(queue) == ([], 0)
    longer = ApiResponse(200, {}, b'{"totalMessages": 130, "first100": [{"id": "q"}]}', secret="t")
    assert classic.parse_message_queue(longer) == ([{"id": "q"}], 130)  # the queue holds more than it lists
    broken = ApiResponse(200, {}, b'{"messages": "none"}', secret="t")
    with pytest.raises(GatewayError, match="'messages' that is not a list"):
        parse_message_history(broken)
