"""The 1msg dialect: addressing, requests, every answer shape, statuses, history and matching a lost card."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow_provider_chatapi.testing._checks import check_onemsg_send
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_chatapi._protocol.connection import settings_from_connection
from airflow_provider_chatapi._protocol.http import ApiResponse, read_response
from airflow_provider_chatapi._protocol.onemsg import CARD_TYPES, ONEMSG
from airflow_provider_chatapi._protocol.onemsg import parse_message_history as parse_history
from airflow_provider_chatapi._protocol.reconcile import CLOCK_SKEW, HISTORY_LIMIT, history_request, pick_card
from airflow_provider_chatapi._protocol.sends import build_send_contact
from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    DeliveryUnknownError,
    GatewayError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
)
from airflow_provider_chatapi.hooks._http import BACKOFF_FACTOR
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook, SendResult
from airflow_provider_chatapi.operators.chatapi import SendContactOperator
from airflow_provider_chatapi.testing import Fault, StandInGateway

TOKEN = "1msg-s3cr3t+token"
ANN = {"name": "Ann Lee", "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"}


def response(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> ApiResponse:
    raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    return read_response(status, headers or {}, raw.encode() if isinstance(raw, str) else raw, secret=TOKEN)


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


# ---- connection and addressing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "dialect", "api_url"),
    [
        ({"host": "https://api.1msg.io/654321"}, "1msg", "https://api.1msg.io/654321"),
        ({"host": "https://api.1msg.io", "login": "654321"}, "1msg", "https://api.1msg.io/654321"),
        ({"host": "sandbox.1msg.io", "login": "instance654321"}, "1msg", "https://sandbox.1msg.io/654321"),
        ({"host": "https://api.1msg.io/instance654321"}, "1msg", "https://api.1msg.io/654321"),
        ({"host": "api.1msg.io", "schema": "654321"}, "1msg", "https://api.1msg.io/654321"),  # a connection URI
        ({"host": None, "password": jwt({"instanceId": "instance654321"})}, "1msg", "https://api.1msg.io/654321"),
        (
            {"host": "https://api.1msg.io", "password": jwt({"instanceId": 654321})},
            "1msg",
            "https://api.1msg.io/654321",
        ),
        ({"host": "https://api.chat-api.com", "login": "7"}, "chatapi", "https://api.chat-api.com/instance7"),
        (
            {"host": None, "login": "7", "extra": {"dialect": "chatapi"}},
            "chatapi",
            "https://api.chat-api.com/instance7",
        ),
        ({"host": "http://127.0.0.1:9/", "login": "7", "extra": {"dialect": "1msg"}}, "1msg", "http://127.0.0.1:9/7"),
        (
            {"host": "http://127.0.0.1:9/7", "extra": {"extra__chatapi__dialect": "onemsg"}},
            "1msg",
            "http://127.0.0.1:9/7",
        ),
    ],
)
def test_dialect_and_url_from_the_connection(fields: dict[str, Any], dialect: str, api_url: str) -> None:
    settings = settings_from_connection(**{"conn_id": "c", "login": None, "password": TOKEN, **fields})
    assert (settings.dialect.name, settings.api_url) == (dialect, api_url)


def test_a_jwt_without_an_instance_claim_does_not_make_one_up() -> None:
    with pytest.raises(ConnectionConfigError, match="instance id is missing"):
        settings_from_connection(conn_id="c", host="https://api.1msg.io", login=None, password=jwt({"sub": "x"}))


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


def test_a_1msg_host_with_no_dialect_posts_cards_to_the_1msg_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIVE",
        json.dumps({"conn_type": "chatapi", "host": "https://api.1msg.io/654321", "password": TOKEN}),
    )
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
                "phones": [{"phone": "+79001111111", "type": "CELL", "wa_id": "79001111111"}],
            }
        ],
    }
    assert result.id == "wamid.HBgLMTc0NzI4MjI0ODYVAgARGBI"


def test_a_connection_uri_puts_the_instance_in_schema_and_it_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BY_URI", f"chatapi://:{requests.utils.quote(TOKEN, safe='')}@api.1msg.io/654321")
    assert ChatApiHook("by_uri").settings.api_url == "https://api.1msg.io/654321"
    monkeypatch.setenv("AIRFLOW_CONN_BY_URI", "chatapi://:t0ken@api.chat-api.com/instance123456")
    assert ChatApiHook("by_uri").settings.api_url == "https://api.chat-api.com/instance123456"


# ---- requests -------------------------------------------------------------------------------------


def test_send_request_carries_cards_and_never_contact_ids() -> None:
    send = build_send_contact(contacts=[ANN], chat_id="120363041234567890@g.us", quoted_message_id="wamid.HBgL1")
    request = ONEMSG.send_request(send)
    assert (request.method, request.endpoint) == ("POST", "sendContact")
    assert request.json == {
        "chatId": "120363041234567890@g.us",
        "contacts": [
            {
                "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
                "phones": [{"phone": "+79001111111", "type": "CELL", "wa_id": "79001111111"}],
                "emails": [{"email": "ann@example.com"}],
                "org": {"company": "Acme"},
            }
        ],
        "quotedMsgId": "wamid.HBgL1",
    }
    assert ONEMSG.send_request(build_send_contact(contacts=[ANN], phone=17472822486)).json["phone"] == "17472822486"  # type: ignore[index]


def test_an_opaque_lid_chat_goes_to_1msg_only() -> None:
    send = build_send_contact(contacts=[ANN], chat_id="123456789012345@lid")
    assert ONEMSG.send_request(send).json["chatId"] == "123456789012345@lid"  # type: ignore[index]


# ---- answers --------------------------------------------------------------------------------------


def test_accepted_send() -> None:
    answer = {"sent": True, "id": "gBGGeRhGZTEfAgkJCh2wAz4ZH-8", "message": "Sent to 556123122026@c.us"}
    assert ONEMSG.parse_send(response(200, answer)) == SendResult(
        id="gBGGeRhGZTEfAgkJCh2wAz4ZH-8", sent=True, message="Sent to 556123122026@c.us", queue_number=None
    )


def test_a_send_taken_as_a_job_is_queued_not_refused() -> None:
    result = ONEMSG.parse_send(response(200, {"sent": False, "jobId": "job_42", "message": "queued as a job"}))
    assert (result.sent, result.job_id, result.id) == (False, "job_42", "job_42")


FAILURES: list[tuple[str, ApiResponse, type[Exception], str]] = [
    ("sent false", response(200, {"sent": False, "message": "Wrong phone"}), RejectedError, "'Wrong phone'"),
    ("window, 400", response(400, {"error": "Dialog window is closed"}), WindowClosedError, "Dialog window is closed"),
    (
        "window, sent false",
        response(200, {"sent": False, "message": "Message is outside the allowed window"}),
        WindowClosedError,
        "outside the allowed window",
    ),
    (
        "window, Meta's error object",
        response(400, {"error": {"message": "Re-engagement message", "code": 131047}}),
        WindowClosedError,
        "Re-engagement message (code 131047)",
    ),
    (
        "window, code past a long text",
        response(400, {"error": {"message": "x" * 400, "code": 131047}}),
        WindowClosedError,
        "xxx",
    ),
    ("other 400", response(400, {"error": "contacts[0].name is required"}), RejectedError, "name is required"),
    ("top-level message", response(400, {"message": "Bad phone"}), RejectedError, "'Bad phone'"),
    (
        "403 plain text",
        response(403, "Channel is in trial mode", {"Content-Type": "text/plain"}),
        AuthenticationError,
        "body 'Channel is in trial mode' (nothing was queued; 1msg does not let this channel send",
    ),
    ("401", response(401, {"error": f'Wrong token "{TOKEN}" for channel "1"'}), AuthenticationError, "Wrong token"),
    ("429, no Retry-After", response(429, {"error": "Too many requests"}), RateLimitedError, "Too many requests"),
    ("500", response(500, {"error": "Internal error"}), DeliveryUnknownError, "MAY HAVE BEEN QUEUED"),
    ("200 without id", response(200, {"sent": True}), DeliveryUnknownError, "without 'sent: true' and a message id"),
    ("200 not json", response(200, "<html>ok</html>"), DeliveryUnknownError, "not a JSON object"),
]


@pytest.mark.parametrize(("name", "answer", "error_class", "said"), FAILURES, ids=[f[0] for f in FAILURES])
def test_every_failure_shape_is_classified(name: str, answer: ApiResponse, error_class: type, said: str) -> None:
    with pytest.raises(error_class) as error:
        ONEMSG.parse_send(answer)
    assert type(error.value) is error_class
    assert said in str(error.value)
    assert TOKEN not in str(error.value)
    if error_class is RateLimitedError:
        assert error.value.retry_after is None and error.value.transient
    if error_class is WindowClosedError:
        assert "not written to this number in the last 24 hours" in str(error.value)
        assert "only a template message" in str(error.value)
        assert isinstance(error.value, RejectedError) and not error.value.transient


@pytest.mark.parametrize(
    ("status", "healthy", "meaning"),
    [
        ("connected", True, "sends messages"),
        ("connecting", True, "once it is connected"),
        ("disconnected", False, "lost its link"),
        ("uninitialized", False, "try again in a few minutes"),
        ("unregistered", False, "registered again"),
        ("banana", False, "does not know"),
    ],
)
def test_statuses_are_explained(status: str, healthy: bool, meaning: str) -> None:
    assert ONEMSG.parse_status(response(200, {"status": status})) == status
    ok, message = ONEMSG.describe_status(status)
    assert ok is healthy and meaning in message and repr(status) in message


def test_history_off_means_cannot_tell() -> None:
    with pytest.raises(GatewayError, match="keeps no message history") as error:
        parse_history(response(200, {"notice": "Message history is disabled"}))
    assert not isinstance(error.value, DeliveryUnknownError)
    assert parse_history(response(200, {"messages": [{"id": "a"}, "junk"]})) == [{"id": "a"}]


# ---- matching an earlier try's card ---------------------------------------------------------------

SINCE = 1_800_000_000.0
SEND = build_send_contact(["4915112345678", "79002222222"], chat_id="120363041234567890@g.us")
VCARDS = (
    "BEGIN:VCARD\nFN:A\nTEL;type=CELL;waid=4915112345678:+49 1511 2345678\nEND:VCARD\n"
    "BEGIN:VCARD\nFN:B\nTEL;type=CELL;waid=79002222222:+7 900 222-22-22\nEND:VCARD"
)


def entry(**changes: Any) -> dict[str, Any]:
    return {
        "id": "wamid.OURS",
        "type": "contacts",
        "fromMe": True,
        "chatId": "120363041234567890@g.us",
        "time": int(SINCE) + 1,
        "body": VCARDS,
        **changes,
    }


def find_contact_card(send: Any, entries: list[dict[str, Any]], *, since: float, **rules: Any) -> str | None:
    return pick_card(send, entries, since=since, card_types=CARD_TYPES, **rules)


def test_the_history_query_is_bounded_by_time() -> None:
    params = dict(history_request(SEND.chat_id, since=SINCE).params)
    assert params["chatId"] == SEND.chat_id and params["min_time"] == str(int(SINCE - CLOCK_SKEW))


def test_our_card_is_found() -> None:
    assert find_contact_card(SEND, [entry()], since=SINCE) == "wamid.OURS"


@pytest.mark.parametrize(
    "other",
    [
        entry(chatId="79005555555@c.us"),
        entry(fromMe=False),
        entry(type="chat"),
        entry(time=int(SINCE - CLOCK_SKEW) - 1),
        entry(body=VCARDS.replace("4915112345678", "49151123456789")),  # a longer number holds ours
        entry(body=VCARDS.split("BEGIN:VCARD\nFN:B")[0]),  # one card of the two
        entry(body=VCARDS + "\nBEGIN:VCARD\nFN:C\nTEL;waid=79003333333:+7\nEND:VCARD"),  # three cards
        entry(id=""),
    ],
    ids=["other chat", "incoming", "text", "too old", "substring", "fewer", "more", "no id"],
)
def test_what_is_not_our_card(other: dict[str, Any]) -> None:
    assert find_contact_card(SEND, [other], since=SINCE) is None


def test_an_entry_without_chat_or_time_counts_last_and_only_for_a_lone_send() -> None:
    chatless, untimed = entry(id="wamid.NOCHAT", chatId=None), entry(id="wamid.NOTIME", time=None)
    assert find_contact_card(SEND, [chatless], since=SINCE) == "wamid.NOCHAT"
    with pytest.raises(GatewayError, match="cannot tell whose card"):
        find_contact_card(SEND, [chatless], since=SINCE, shared=True)
    assert (
        find_contact_card(SEND, [untimed, entry(id="wamid.TIMED", time=int(SINCE) + 50)], since=SINCE) == "wamid.TIMED"
    )
    assert find_contact_card(SEND, [untimed], since=SINCE) == "wamid.NOTIME"


def test_an_id_on_record_for_another_recipient_is_never_claimed() -> None:
    assert find_contact_card(SEND, [entry()], since=SINCE, claimed={"wamid.OURS"}) is None
    mine = entry(id="wamid.MINE", time=int(SINCE) + 9)
    assert find_contact_card(SEND, [entry(), mine], since=SINCE, claimed={"wamid.OURS"}) == "wamid.MINE"


def test_a_full_history_page_means_cannot_tell() -> None:
    page = {"messages": [{"id": f"m{n}", "time": n} for n in range(HISTORY_LIMIT)]}
    with pytest.raises(GatewayError, match="may not have listed them all"):
        parse_history(response(200, page))


def test_the_nearest_candidate_wins_at_or_after_the_intent_first() -> None:
    before = entry(id="wamid.BEFORE", time=int(SINCE) - 1)
    later = entry(id="wamid.LATER", time=int(SINCE) + 30)
    after = entry(id="wamid.AFTER", time=int(SINCE) + 2)
    assert find_contact_card(SEND, [before, later, after], since=SINCE) == "wamid.AFTER"
    assert find_contact_card(SEND, [before, entry(id="wamid.OLD", time=int(SINCE) - 60)], since=SINCE) == "wamid.BEFORE"


def test_two_equally_likely_candidates_mean_cannot_tell() -> None:
    with pytest.raises(GatewayError, match=r"cannot tell which .*wamid\.A, wamid\.B"):
        find_contact_card(SEND, [entry(id="wamid.A"), entry(id="wamid.B")], since=SINCE)


# ---- over HTTP, against the stand-in speaking 1msg ------------------------------------------------


def test_send_by_ids_and_by_cards(onemsg_default: StandInGateway) -> None:
    hook = ChatApiHook()
    by_ids = hook.send_contact(["+7 900 111-11-11"], phone="17472822486")
    by_cards = asyncio.run(hook.asend_contact(contacts=[ANN], chat_id="120363041234567890@g.us"))

    first, second = onemsg_default.requests
    assert first.path == f"/{onemsg_default.instance_id}/sendContact" and "contactId" not in first.json
    assert second.json["contacts"][0]["name"]["formatted_name"] == "Ann Lee"
    assert [message.id for message in onemsg_default.messages] == [by_ids.id, by_cards.id]
    assert all(message.id.startswith("wamid.") for message in onemsg_default.messages)
    assert onemsg_default.messages[1].contact_ids == ("79001111111@c.us",)


def test_window_closed_fails_at_once_after_one_request(onemsg_default: StandInGateway) -> None:
    onemsg_default.inject(Fault.window_closed(), Fault.window_closed())
    with pytest.raises(WindowClosedError, match="24 hours"):
        ChatApiHook(max_retries=3).send_contact(contacts=[ANN], phone="17472822486")
    assert len(onemsg_default.requests_to("sendContact")) == 1
    onemsg_default.reset()
    onemsg_default.inject(Fault.window_closed())
    with pytest.raises(AirflowFailException, match="only a template message"):
        SendContactOperator(task_id="send", contacts=[ANN], phone="17472822486").execute({})  # type: ignore[arg-type]
    assert len(onemsg_default.requests_to("sendContact")) == 1 and onemsg_default.messages == []


def test_429_without_retry_after_is_retried_with_backoff(onemsg_default: StandInGateway) -> None:
    onemsg_default.inject(Fault.rate_limited(retry_after=None))
    started = time.monotonic()
    result = ChatApiHook(max_retries=2).send_contact(contacts=[ANN], phone="17472822486")
    waited = time.monotonic() - started
    assert len(onemsg_default.requests_to("sendContact")) == 2 and [m.id for m in onemsg_default.messages] == [
        result.id
    ]
    assert BACKOFF_FACTOR <= waited < BACKOFF_FACTOR + 2


def test_403_plain_text_is_not_retried_and_says_what_1msg_said(onemsg_default: StandInGateway) -> None:
    onemsg_default.inject(Fault.forbidden_text("Channel is in trial mode"))
    with pytest.raises(AuthenticationError, match=r"Channel is in trial mode.*trial channel"):
        ChatApiHook(max_retries=3).send_contact(contacts=[ANN], phone="17472822486")
    assert len(onemsg_default.requests) == 1


def test_a_send_taken_as_a_job_returns_the_job_and_queues_once(onemsg_default: StandInGateway) -> None:
    onemsg_default.inject(Fault.queued_as_job())
    job = SendContactOperator(task_id="send", contacts=[ANN], phone="17472822486").execute({})  # type: ignore[arg-type]
    assert job.startswith("job_") and len(onemsg_default.messages) == 1 and len(onemsg_default.requests) == 1


@pytest.mark.parametrize(
    ("status", "ok", "meaning"), [("connected", True, "sends messages"), ("disconnected", False, "lost its link")]
)
def test_test_connection(monkeypatch: pytest.MonkeyPatch, status: str, ok: bool, meaning: str) -> None:
    with StandInGateway(dialect="1msg", account_status=status) as gateway:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
        healthy, message = ChatApiHook().test_connection()
        assert healthy is ok and f"channel status {status!r}" in message and meaning in message
        (request,) = gateway.requests
        assert (request.method, request.endpoint) == ("GET", "status")


def test_a_wrong_token_is_scrubbed_from_1msgs_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    with StandInGateway(dialect="1msg", echo_token=True) as gateway:
        wrong = "wrong-token-that-is-long"
        conn = json.loads(gateway.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", json.dumps({**conn, "password": wrong}))
        with pytest.raises(AuthenticationError) as error:
            ChatApiHook().send_contact(contacts=[ANN], phone="17472822486")
        assert wrong in gateway.requests[0].query["token"]  # the stand-in did get it, and echoed it
        assert wrong not in str(error.value) and "***" in str(error.value)


def test_fan_out_and_notifier_send_cards(onemsg_default: StandInGateway) -> None:
    from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier

    recipients = ["17472822486", "120363041234567890@g.us", "447911123456"]
    results = asyncio.run(ChatApiHook().asend_to_many(contacts=[ANN], recipients=recipients, max_in_flight=2))
    ChatApiNotifier(contacts=json.dumps([ANN]), chat_id="120363041234567890@g.us").notify({})  # type: ignore[arg-type]

    by_chat = {message.id: message.chat_id for message in onemsg_default.messages}
    assert [by_chat[result.id] for result in results] == [
        "17472822486@c.us",
        "120363041234567890@g.us",
        "447911123456@c.us",
    ]
    assert sorted(message.chat_id for message in onemsg_default.messages) == sorted(
        ["17472822486@c.us", "120363041234567890@g.us", "447911123456@c.us", "120363041234567890@g.us"]
    )
    assert all(message.contacts[0]["name"]["formatted_name"] == "Ann Lee" for message in onemsg_default.messages)


def test_a_classic_fan_out_refuses_a_card_without_a_number_before_anything(chatapi_default: StandInGateway) -> None:
    from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator

    from .conftest import DictStore

    store = DictStore()
    operator = SendContactToManyOperator(
        task_id="many", contacts=[ANN, {"name": "Bob", "email": "bob@example.com"}], recipients=["17472822486"]
    )
    with pytest.raises(AirflowFailException, match=r"contacts\[1\]=.*WhatsApp number"):
        operator.execute({"task_state_store": store})  # type: ignore[arg-type]
    assert chatapi_default.requests == [] and store.values == {}
    SendContactToManyOperator(task_id="many", contacts=[ANN], recipients=["17472822486"]).execute({})  # type: ignore[arg-type]
    assert len(chatapi_default.requests) == 1  # the same setting does reach the gateway


# ---- the provider's 1msg requests against the stand-in's own, independent checks -----------------

cards = st.fixed_dictionaries(
    {"name": st.sampled_from(["Ann Lee", "Cher", "  Bob  Stone ", "Ана Ли"])},
    optional={
        "phone": st.sampled_from(["+7 900 111-11-11", "447911123456", 4915112345678]),
        "email": st.sampled_from(["ann@example.com", {"email": "b@example.org", "type": "home"}]),
        "org": st.sampled_from(["Acme", {"company": "Acme", "title": "SRE"}]),
        "urls": st.just(["https://example.com/a"]),
        "birthday": st.sampled_from(["1990-02-28", "2000-01-01"]),
        "addresses": st.just([{"city": "Berlin", "zip": 10115, "type": "WORK"}]),
    },
)


@settings(max_examples=150)
@given(
    st.lists(cards, min_size=1, max_size=4),
    st.sampled_from([{"phone": "17472822486"}, {"chat_id": "120363041234567890@g.us"}]),
)
def test_every_1msg_request_we_build_is_one_the_stand_in_accepts(
    contacts: list[dict[str, Any]], target: dict[str, str]
) -> None:
    request = ONEMSG.send_request(build_send_contact(contacts=contacts, **target))
    problem, _, queued = check_onemsg_send(json.loads(json.dumps(request.json)))
    assert problem is None
    assert list(queued) == request.json["contacts"]  # type: ignore[index]
