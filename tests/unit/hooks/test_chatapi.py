"""ChatApiHook over real HTTP: the requests it sends on each dialect, what it reads and when, its kept-alive
connections, and a token it never shows. (Its transports and retries: test_http.py; fan-out: test_fan_out.py;
Test connection: test_connection_probe.py.)"""

from __future__ import annotations

import asyncio
import io
import json
import traceback
from collections.abc import Callable
from typing import Any

import pytest
import requests
import rich.console
import rich.traceback

from airflow_provider_chatapi.exceptions import AuthenticationError, ConnectionConfigError, InvalidInputError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.testing import DEFAULT_TOKEN, StandInGateway
from tests.helpers import ANN_CARD, TOKEN


def test_send_contact_sends_exactly_the_documented_request(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    result = ChatApiHook().send_contact(["+7 900 111-11-11", "79002222222@c.us"], phone="+1 747 282 2486")

    (request,) = gateway.requests
    assert (request.method, request.path) == ("POST", f"/instance{gateway.instance_id}/sendContact")
    assert request.query == {"token": DEFAULT_TOKEN}
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"phone": "17472822486", "contactId": ["79001111111@c.us", "79002222222@c.us"]}
    (message,) = gateway.messages
    assert result.id == message.id and result.id.startswith("true_17472822486@c.us_")
    assert result.sent and result.message == "Sent to 17472822486@c.us"
    assert message.type == "multi_vcard"


def test_instance_id_in_login_is_appended(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in(connection=None)
    connect("chatapi_split", host=gateway.base_url, login=gateway.instance_id, password=gateway.token)
    ChatApiHook("chatapi_split").send_contact("79001111111", chat_id="120363041234567890@g.us")
    assert gateway.requests[0].path == f"/instance{gateway.instance_id}/sendContact"
    assert gateway.messages[0].chat_id == "120363041234567890@g.us"


def test_one_connection_is_reused_across_sends(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    hook = ChatApiHook()
    for phone in ("79001111111", "79002222222", "79003333333"):
        hook.send_contact("79009999999", phone=phone)
    ports = {request.client_port for request in gateway.requests}
    assert len(gateway.requests) == 3 and len(ports) == 1


def test_nothing_is_fetched_or_connected_until_the_first_call(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    hook = ChatApiHook()  # its connection leads to the stand-in, so a probe at construction would show there
    assert "settings" not in vars(hook) and "session" not in vars(hook)
    assert gateway.requests == []
    hook.get_account_status()
    assert len(gateway.requests) == 1  # and the same hook does reach it when used


def test_bad_input_fails_before_the_connection_is_read(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    hook = ChatApiHook()
    with pytest.raises(InvalidInputError, match=r"contact_ids\[1\]=None"):
        hook.send_contact(["79001111111", None], phone="79002222222")
    assert "settings" not in vars(hook)  # refused before the connection was read
    assert gateway.requests == []
    hook.send_contact(["79001111111"], phone="79002222222")
    assert len(gateway.requests) == 1


def test_missing_token_names_the_connection(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in()
    connect("chatapi_default", host=gateway.api_url)
    with pytest.raises(ConnectionConfigError, match=r"connection 'chatapi_default' password=None: .*token is missing"):
        ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert gateway.requests == []


def test_wrong_token_echoed_by_the_gateway_never_surfaces(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in(echo_token=True)
    leaked = "leaky-token-123456"
    connect("chatapi_default", gateway, password=leaked)
    with pytest.raises(AuthenticationError) as error:
        ChatApiHook().send_contact("79001111111", phone="79002222222")
    assert leaked in gateway.requests[0].query["token"]  # it did travel, and the gateway echoed it
    assert leaked not in str(error.value) and "Got: ***" in str(error.value)
    assert error.value.__cause__ is None


def test_hook_timeout_overrides_the_connection(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in()
    connect("chatapi_default", gateway, extra={"timeout": 30})
    assert ChatApiHook(timeout=0.5, max_retries=0).settings.timeout == 0.5


def test_repr_shows_no_token(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    hook = ChatApiHook()
    result = hook.send_contact("79001111111", phone="79002222222")
    for text in (repr(hook), repr(hook.settings), repr(result)):
        assert gateway.token not in text


def test_one_async_client_serves_every_call_of_a_hook(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()

    async def two_sends() -> None:
        hook = ChatApiHook()
        for phone in ("79002222222", "79003333333"):
            await hook.asend_contact(["79001111111"], phone=phone)
        await hook.aclose()

    asyncio.run(two_sends())
    assert len(gateway.requests) == 2
    assert len({request.client_port for request in gateway.requests}) == 1  # one kept-alive connection


# ---- 1msg -----------------------------------------------------------------------------------------


class Recorder(requests.adapters.BaseAdapter):
    """Stands where the internet would be: records what the real hook sends and answers like 1msg."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        answer = requests.Response()
        answer.status_code, answer.request, answer.url = 200, request, request.url
        answer._content = json.dumps(
            {"sent": True, "id": "wamid.HBgLMTc0NzI4MjI0ODYVAgARGBI", "message": "ok"}
        ).encode()
        return answer

    def close(self) -> None:
        pass


def test_a_1msg_host_with_no_dialect_posts_cards_to_the_1msg_url(connect: Callable[..., None]) -> None:
    connect("live", host="https://api.1msg.io/654321", password=TOKEN)
    hook = ChatApiHook("live")
    recorder = Recorder()
    hook.get_conn().mount("https://", recorder)

    result = hook.send_contact(["+7 900 111-11-11"], phone="+1 747 282 2486")

    (sent,) = recorder.sent
    assert sent.method == "POST"
    assert sent.url == f"https://api.1msg.io/654321/sendContact?token={requests.utils.quote(TOKEN, safe='')}"
    body = json.loads(sent.body or b"")
    assert body == {
        "phone": "17472822486",
        "contacts": [
            {
                "name": {"formatted_name": "+7 900 111-11-11", "first_name": "+7 900 111-11-11"},
                "phones": [{"phone": "+7 900 111-11-11", "wa_id": "79001111111"}],
            }
        ],
    }
    assert result.id == "wamid.HBgLMTc0NzI4MjI0ODYVAgARGBI"


def test_a_connection_uri_puts_the_instance_in_schema_and_it_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BY_URI", f"chatapi://:{requests.utils.quote(TOKEN, safe='')}@api.1msg.io/654321")
    assert ChatApiHook("by_uri").settings.api_url == "https://api.1msg.io/654321"
    monkeypatch.setenv("AIRFLOW_CONN_BY_URI", "chatapi://:t0ken@api.chat-api.com/instance123456")
    assert ChatApiHook("by_uri").settings.api_url == "https://api.chat-api.com/instance123456"


def test_send_by_ids_and_by_cards(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")
    hook = ChatApiHook()
    by_ids = hook.send_contact(["+7 900 111-11-11"], phone="17472822486")
    by_cards = asyncio.run(hook.asend_contact(contacts=[ANN_CARD], chat_id="120363041234567890@g.us"))

    first, second = gateway.requests
    assert first.path == f"/{gateway.instance_id}/sendContact" and "contactId" not in first.json
    assert second.json["contacts"][0]["name"]["formatted_name"] == "Ann Lee"
    assert [message.id for message in gateway.messages] == [by_ids.id, by_cards.id]
    assert all(message.id.startswith("wamid.") for message in gateway.messages)
    assert gateway.messages[0].contact_ids == ("79001111111@c.us",)  # a contact id is a WhatsApp id
    assert gateway.messages[1].contacts[0]["phones"] == [{"phone": "+7 900 111-11-11"}]  # a card's phone has none


def test_a_wrong_token_is_scrubbed_from_1msgs_echo(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in("1msg", echo_token=True)
    wrong = "wrong-token-that-is-long"
    connect("chatapi_default", gateway, password=wrong)
    with pytest.raises(AuthenticationError) as error:
        ChatApiHook().send_contact(contacts=[ANN_CARD], phone="17472822486")
    assert wrong in gateway.requests[0].query["token"]  # the stand-in did get it, and echoed it
    assert wrong not in str(error.value) and "***" in str(error.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "ftp://127.0.0.1"},
        {"login": "not-a-number"},
        {"login": None},
        {"extra": json.dumps({"dialect": "telegram"})},
        {"extra": json.dumps({"timeout": "soon"})},
        {"extra": json.dumps({"default_region": "Narnia"})},
    ],
    ids=["host", "login", "no-instance", "dialect", "timeout", "region"],
)
@pytest.mark.parametrize("reader", ["settings", "asettings"])
def test_a_refused_connection_shows_no_token_in_any_frames_locals(
    connect: Callable[..., None], fields: dict[str, Any], reader: str
) -> None:
    """Airflow 3.0's `dags test` prints a failed task's traceback with every frame's locals (rich), and an
    Airflow 3 ``Connection`` shows its password in ``repr()``: no frame of ours may hold either."""
    token = f"tok-{TOKEN}-locals"
    connect("chatapi_default", **{"host": "http://127.0.0.1:9", "login": "123456", "password": token, **fields})
    hook = ChatApiHook()
    with pytest.raises(ConnectionConfigError) as error:
        asyncio.run(hook.asettings()) if reader == "asettings" else hook.settings
    below_this_test = error.value.with_traceback(error.tb.tb_next)
    console = rich.console.Console(file=io.StringIO(), width=300)
    console.print(
        rich.traceback.Traceback.from_exception(error.type, below_this_test, error.tb.tb_next, show_locals=True)
    )
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "ChatApiHook(chatapi_conn_id='chatapi_default')" in shown  # the locals are shown
    assert token not in shown
    plain = "".join(traceback.TracebackException.from_exception(below_this_test, capture_locals=True).format())
    assert token not in plain
