"""Reading 1msg's delivery acks: the furthest state in any order, failures with their reason and code, and
a channel that cannot report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.acks import DeliveryWatch, checked_message_ids, furthest, parse_delivery, tally
from airflow_provider_chatapi._protocol.http import ApiResponse
from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryReportUnavailableError,
    GatewayError,
    InvalidInputError,
    RateLimitedError,
)

ID = "wamid.HBgLMTc0NzI4MjI0ODYVAgARGBI"


def answer(body: Any, status: int = 200) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiResponse(status, {"content-type": "application/json"}, raw, secret="tok-secret")


def hooks(*statuses: str | dict[str, Any]) -> dict[str, Any]:
    return {"hooks": [status if isinstance(status, dict) else {"id": ID, "status": status} for status in statuses]}


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        ((), None),
        (("sent",), "sent"),
        (("delivered", "sent"), "delivered"),  # out of order
        (("read",), "read"),  # read without delivered: Meta skips delivered when both come at once
        (("sent", "played"), "read"),
        (("viewed",), "read"),
        (("delivered", "failed"), "delivered"),  # a late failure never undoes a delivery
        (("failed", "read"), "read"),
        (("sent", "failed"), "failed"),
        (("deleted", "warning"), None),  # Meta's other statuses say nothing of delivery
    ],
)
def test_the_furthest_state_wins_in_any_order(statuses: tuple[str, ...], state: str | None) -> None:
    assert parse_delivery(ID, answer(hooks(*statuses))).state == state


def test_another_messages_events_are_not_ours() -> None:
    assert parse_delivery(ID, answer(hooks({"id": "wamid.OTHER", "status": "read"}, "sent"))).state == "sent"


def test_a_failure_in_metas_shape_gives_code_and_title() -> None:
    title = "Message failed to send because more than 24 hours have passed since the customer last replied."
    event = {"id": ID, "status": "failed", "errors": [{"code": 131047, "title": title}]}
    delivery = parse_delivery(ID, answer(hooks(event)))
    assert (delivery.state, delivery.code, delivery.reason) == ("failed", 131047, title)
    assert delivery.meaning is not None and "send a template" in delivery.meaning


def test_a_failure_as_1msg_text_is_recognised_by_its_words() -> None:
    event = {"id": ID, "status": "failed", "error": "User's number is part of an experiment"}
    delivery = parse_delivery(ID, answer(hooks(event)))
    assert (delivery.reason, delivery.code) == ("User's number is part of an experiment", 130472)


def test_a_failure_with_unknown_words_has_no_code_but_keeps_them() -> None:
    delivery = furthest(ID, [{"status": "failed", "error": "Something odd"}])
    assert (delivery.state, delivery.reason, delivery.code, delivery.meaning) == ("failed", "Something odd", None, None)


@pytest.mark.parametrize(
    ("events", "recipient"),
    [
        # 1msg's own ack shape names the chat; hookInfo's (Meta's) only the recipient's number
        ([{"id": ID, "status": "failed", "error": "x", "chatId": "79004444444@c.us", "recipient_id": "7900"}],
         "79004444444@c.us"),
        ([{"id": ID, "status": "sent", "recipient_id": "79004444444"}, {"id": ID, "status": "failed", "error": "x"}],
         "79004444444"),  # on another event of the message
        ([{"id": "wamid.OTHER", "status": "sent", "chatId": "79005555555@c.us"}, {"id": ID, "status": "failed"}], None),
    ],
)  # fmt: skip
def test_a_failure_names_the_chat_its_acks_name(events: list[dict[str, Any]], recipient: str | None) -> None:
    """Issue 22: a failed ack named the message id, not whom it was sent to."""
    delivery = parse_delivery(ID, answer({"hooks": events}))
    assert (delivery.state, delivery.recipient) == ("failed", recipient)
    event, _ = DeliveryWatch([ID], "delivered").absorb([delivery])
    assert event is not None and event["recipient"] == recipient
    assert f"WhatsApp message {ID}{f' to {recipient}' if recipient else ''} failed: " in event["error"]


def test_a_tally_says_how_far_the_messages_got() -> None:
    states = {"a": "read", "b": "delivered", "c": "sent", "d": None, "e": "failed"}
    assert tally(states, "delivered") == "2/5 delivered (1 read), 1 failed, 2 waiting"
    assert tally(states, "read") == "1/5 read, 1 failed, 3 waiting"


def test_the_token_is_scrubbed_from_a_reason() -> None:
    event = {"id": ID, "status": "failed", "error": "bad token tok-secret"}
    assert parse_delivery(ID, answer(hooks(event))).reason == "bad token ***"


@pytest.mark.parametrize("body", [{"messages": []}, {}])
def test_an_answer_without_hooks_means_the_channel_cannot_report(body: dict[str, Any]) -> None:
    with pytest.raises(DeliveryReportUnavailableError, match="cannot report delivery by message id"):
        parse_delivery(ID, answer(body))


def test_a_404_means_the_channel_cannot_report() -> None:
    with pytest.raises(DeliveryReportUnavailableError, match="HTTP 404"):
        parse_delivery(ID, answer({"error": "Not found"}, status=404))


def test_other_failures_keep_their_class() -> None:
    with pytest.raises(AuthenticationError):
        parse_delivery(ID, answer({"error": "Wrong token"}, status=401))
    with pytest.raises(RateLimitedError):
        parse_delivery(ID, answer({"error": "slow down"}, status=429))


@pytest.mark.parametrize(
    ("given", "ids"),
    [
        (ID, [ID]),
        ([ID, "wamid.B", ID], [ID, "wamid.B"]),
        (f"['{ID}', 'wamid.B']", [ID, "wamid.B"]),  # a non-native template's rendering of a fan-out's XCom
    ],
)
def test_message_ids_arrive_in_every_form_an_xcom_takes(given: Any, ids: list[str]) -> None:
    assert checked_message_ids(given) == ids


@pytest.mark.parametrize(("given", "field"), [(None, "message_ids"), ([], "message_ids"), ([ID, ""], "message_ids[1]")])
def test_bad_message_ids_are_refused_naming_the_field(given: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        checked_message_ids(given)
    assert refused.value.field == field


def test_a_watch_ends_when_every_message_arrived_and_moves_only_forward() -> None:
    watch = DeliveryWatch([ID, "wamid.B"], "delivered")
    read = furthest(ID, [{"status": "read"}])
    assert watch.absorb([read, furthest("wamid.B", [{"status": "sent"}])]) == (None, False)
    assert watch.pending() == ["wamid.B"] and "wamid.B (sent)" in watch.short_of_goal()
    event, _ = watch.absorb([furthest("wamid.B", [{"status": "delivered"}])])
    assert event == {"status": "success", "states": {ID: "read", "wamid.B": "delivered"}}


def test_a_watch_backs_off_on_a_transient_failure_and_stops_on_a_permanent_one() -> None:
    watch = DeliveryWatch([ID], "read")
    assert watch.absorb([RateLimitedError("hookInfo", "slow down", status_code=429)]) == (None, True)
    assert watch.absorb([GatewayError("hookInfo", "oops", status_code=502)]) == (None, True)
    event, back_off = watch.absorb([AuthenticationError("hookInfo", "Wrong token", status_code=401)])
    assert event is not None and event["status"] == "error" and not back_off


def test_a_watch_reports_a_failure_with_its_meaning() -> None:
    watch = DeliveryWatch([ID], "delivered")
    event, _ = watch.absorb(
        [furthest(ID, [{"status": "failed", "errors": [{"code": 131026, "title": "Undeliverable"}]}])]
    )
    assert event is not None and event["status"] == "failed"
    assert (event["message_id"], event["code"]) == (ID, 131026)
    assert "cannot receive it" in event["error"]


def test_an_unreadable_rendered_list_of_ids_is_named_as_it_was_given() -> None:
    """Before, the error showed ``None`` (what parsing made of it) instead of what the template rendered."""
    rendered = "[" * 100_000
    with pytest.raises(InvalidInputError) as refused:
        checked_message_ids(rendered)
    assert (refused.value.field, refused.value.value) == ("message_ids", rendered)
