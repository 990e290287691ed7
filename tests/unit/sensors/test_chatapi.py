"""The delivery sensor and its trigger without a DAG run: what is refused before any request, what the
trigger carries, and how it waits through a busy gateway."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout, TaskDeferred

from airflow_provider_chatapi.exceptions import DeliveryFailedError, InvalidInputError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.sensors.chatapi import ChatApiDeliverySensor
from airflow_provider_chatapi.testing import Ack, Fault, StandInGateway
from airflow_provider_chatapi.triggers import chatapi as triggers
from airflow_provider_chatapi.triggers.chatapi import ChatApiDeliveryTrigger

TOKEN = "sensor-unit-token-91ab"
LOG = logging.getLogger("test.chatapi.sensor")


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Callable[[int], list[str]]:
    """``logged(level)``: the lines the sensor and the trigger logged at ``level`` or above, through one stdlib
    logger that ``caplog`` reads on every release (Airflow's task loggers do not reach it)."""
    monkeypatch.setattr(ChatApiDeliverySensor, "log", property(lambda self: LOG))
    monkeypatch.setattr(ChatApiDeliveryTrigger, "log", property(lambda self: LOG))
    caplog.set_level(logging.INFO, logger=LOG.name)
    return lambda level: [r.getMessage() for r in caplog.records if r.name == LOG.name and r.levelno >= level]


def summary(logged: Callable[[int], list[str]]) -> list[str]:
    """The sensor's closing lines (Airflow's own may follow them)."""
    return [line for line in logged(logging.INFO) if line.startswith("Delivery: ")]


class Ti:
    """A task instance whose upstream sending task listed ``job_abc`` as a 1msg job id."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: list[str], key: str) -> Any:
        assert key == "chatapi_job_ids"
        return [["job_abc"], None]

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def after_a_send(**options: Any) -> ChatApiDeliverySensor:
    sensor = ChatApiDeliverySensor(task_id="wait", **options)
    sensor.upstream_task_ids.add("send")
    return sensor


def sent_card(gateway: StandInGateway, phone: str = "79002222222") -> str:
    with ChatApiHook() as hook:
        return hook.send_contact(["79001111111"], phone=phone).id


def first_event(trigger: ChatApiDeliveryTrigger) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        events = trigger.run()
        event = await events.__anext__()
        await events.aclose()
        return dict(event.payload)

    return asyncio.run(run())


@pytest.mark.parametrize("wait_for", ["sent", "failed", "Delivered", None])
def test_wait_for_is_checked_when_the_dag_is_parsed(wait_for: Any) -> None:
    with pytest.raises(InvalidInputError, match="wait_for"):
        ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A", wait_for=wait_for)


def test_the_deferral_carries_the_connection_id_never_the_token(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", token=TOKEN)
    message_id = sent_card(gateway)
    sensor = ChatApiDeliverySensor(task_id="wait", message_ids=[message_id], deferrable=True, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})  # type: ignore[arg-type]
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "airflow_provider_chatapi.triggers.chatapi.ChatApiDeliveryTrigger"
    assert kwargs["chatapi_conn_id"] == "chatapi_default" and kwargs["message_ids"] == [message_id]
    assert TOKEN not in repr(kwargs) and time.time() < kwargs["deadline"] <= time.time() + 60
    assert deferred.value.method_name == "execute_complete"
    assert gateway.requests_to("hookInfo") == []  # the triggerer asks, not the worker


def test_fail_on_job_ids_refuses_a_job_id_before_any_request(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")
    sensor = after_a_send(message_ids=["wamid.A", "job_abc"], fail_on_job_ids=True)
    with pytest.raises(AirflowFailException, match=r"job_abc.*1msg job ids.*fail_on_job_ids=True"):
        sensor.execute({"ti": Ti()})  # type: ignore[arg-type]
    assert gateway.requests == []


def test_job_ids_are_reported_and_the_other_messages_watched(
    stand_in: Callable[..., StandInGateway], logged: Callable[[int], list[str]]
) -> None:
    """Issue 22: one job id among 200 sends failed the sensor at once, and it watched none of the others."""
    gateway = stand_in("1msg")
    message_id = sent_card(gateway)
    ti = Ti()
    sensor = after_a_send(message_ids=[message_id, "job_abc"], deferrable=False, poke_interval=0.05, timeout=10)
    assert sensor.execute({"ti": ti}) == {message_id: "delivered"}  # type: ignore[arg-type]
    assert ti.pushed == {"chatapi_job_ids": ["job_abc"]}
    assert [request.query["messageId"] for request in gateway.requests_to("hookInfo")] == [message_id]
    [warning] = [line for line in logged(logging.WARNING) if "job ids" in line]
    assert "1 of 2 message ids are 1msg job ids" in warning and "job_abc" in warning
    assert "watching the other 1" in warning and "'chatapi_job_ids'" in warning
    assert summary(logged) == ["Delivery: 1/1 delivered, 0 failed, 0 waiting; 1 job id not watched"]


def test_a_deferred_wait_watches_only_the_message_ids_and_sums_up_with_the_job_ids(
    stand_in: Callable[..., StandInGateway], logged: Callable[[int], list[str]]
) -> None:
    gateway = stand_in("1msg")
    message_id = sent_card(gateway)
    sensor = after_a_send(message_ids=["job_abc", message_id], deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": Ti()})  # type: ignore[arg-type]
    assert deferred.value.trigger.message_ids == [message_id]
    event = first_event(deferred.value.trigger)
    resumed = after_a_send(message_ids=["job_abc", message_id])  # a new instance, as on the worker
    assert resumed.execute_complete({"ti": Ti()}, event) == {message_id: "delivered"}  # type: ignore[arg-type]
    assert summary(logged) == ["Delivery: 1/1 delivered, 0 failed, 0 waiting; 1 job id not watched"]


def test_when_every_id_is_a_job_id_the_sensor_says_so_and_succeeds_at_once(
    stand_in: Callable[..., StandInGateway], logged: Callable[[int], list[str]]
) -> None:
    gateway = stand_in("1msg")
    ti = Ti()
    assert after_a_send(message_ids="job_abc", deferrable=True).execute({"ti": ti}) == {}  # type: ignore[arg-type]
    assert ti.pushed == {"chatapi_job_ids": ["job_abc"]} and gateway.requests == []
    [warning] = [line for line in logged(logging.WARNING) if "job ids" in line]
    assert "1 of 1 message ids are 1msg job ids" in warning and "nothing is left to watch" in warning
    assert summary(logged) == ["Delivery: 0/0 delivered, 0 failed, 0 waiting; 1 job id not watched"]


def test_a_classic_connection_fails_at_once(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("chatapi")
    with pytest.raises(AirflowFailException, match="only by webhook"):
        ChatApiDeliverySensor(task_id="wait", message_ids="true_x").execute({})  # type: ignore[arg-type]
    assert gateway.requests == []


def test_the_trigger_backs_off_through_a_busy_gateway_and_then_succeeds(
    stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = stand_in("1msg", acks={"79002222222@c.us": [Ack("sent"), Ack("delivered", after_polls=1)]})
    message_id = sent_card(gateway)
    # No HTTP retries in place, so each failure reaches the trigger's own back-off.
    monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json(max_retries=0))
    gateway.inject(Fault.rate_limited(retry_after=None), Fault.server_error(502, queued=False), endpoint="hookInfo")
    trigger = ChatApiDeliveryTrigger(
        message_ids=[message_id], wait_for="delivered", deadline=time.time() + 30, poke_interval=0.05
    )
    event = first_event(trigger)
    assert event == {"status": "success", "states": {message_id: "delivered"}}
    assert len(gateway.requests_to("hookInfo")) == 4  # 429, 502, then sent, then delivered


def test_the_trigger_gives_up_at_its_deadline_naming_what_is_missing(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", default_acks=[Ack("sent")])
    message_id = sent_card(gateway)
    started = time.monotonic()
    trigger = ChatApiDeliveryTrigger(
        message_ids=[message_id], wait_for="read", deadline=time.time() + 0.5, poke_interval=0.1
    )
    event = first_event(trigger)
    assert event["status"] == "timeout" and time.monotonic() - started < 3
    assert f"{message_id} (sent)" in event["error"] and "still short of 'read'" in event["error"]
    sensor = ChatApiDeliverySensor(task_id="wait", message_ids=message_id, wait_for="read")
    with pytest.raises(AirflowSensorTimeout, match="still short of 'read'"):
        sensor.execute_complete({}, event)  # type: ignore[arg-type]


def test_a_failed_ack_fails_the_task_naming_the_message_and_its_recipient(
    stand_in: Callable[..., StandInGateway], logged: Callable[[int], list[str]]
) -> None:
    failure = [Ack("sent"), Ack("failed", after_polls=1, code=131026, title="Undeliverable")]
    gateway = stand_in("1msg", acks={"79004444444@c.us": failure})
    ids = [sent_card(gateway), sent_card(gateway, "79004444444")]
    trigger = ChatApiDeliveryTrigger(message_ids=ids, wait_for="delivered", deadline=time.time() + 30, poke_interval=0)
    event = first_event(trigger)
    assert (event["status"], event["message_id"], event["recipient"]) == ("failed", ids[1], "79004444444")
    failure_text = f"WhatsApp message {ids[1]} to 79004444444 failed: Undeliverable"
    with pytest.raises(AirflowFailException, match=failure_text) as failed:
        ChatApiDeliverySensor(task_id="wait", message_ids=ids).execute_complete({}, event)  # type: ignore[arg-type]
    cause = failed.value.__cause__
    assert isinstance(cause, DeliveryFailedError) and (cause.recipient, cause.code) == ("79004444444", 131026)
    assert summary(logged) == ["Delivery: 1/2 delivered, 1 failed, 0 waiting"]


def test_a_failed_event_fails_the_task_with_the_delivery_error_behind_it() -> None:
    sensor = ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A")
    event = {"status": "failed", "error": "WhatsApp message wamid.A failed: x", "message_id": "wamid.A",
             "reason": "x", "code": 131026, "meaning": "the number cannot receive it"}  # fmt: skip
    with pytest.raises(AirflowFailException) as failed:
        sensor.execute_complete({}, event)  # type: ignore[arg-type]
    cause = failed.value.__cause__
    assert isinstance(cause, DeliveryFailedError) and (cause.message_id, cause.code) == ("wamid.A", 131026)


@pytest.mark.parametrize(("interval", "lines"), [(0.0, 3), (None, 1)], ids=["every poll", "default interval"])
def test_the_trigger_logs_how_far_the_messages_got_while_it_waits(
    stand_in: Callable[..., StandInGateway],
    monkeypatch: pytest.MonkeyPatch,
    logged: Callable[[int], list[str]],
    interval: float | None,
    lines: int,
) -> None:
    """Issue 22: a deferred sensor showed nothing but Airflow's "trigger starting" for hours."""
    gateway = stand_in("1msg", acks={"79003333333@c.us": [Ack("sent"), Ack("read", after_polls=3)]})
    ids = [sent_card(gateway), sent_card(gateway, "79003333333")]
    if interval is not None:
        monkeypatch.setattr(triggers, "PROGRESS_INTERVAL", interval)
    trigger = ChatApiDeliveryTrigger(message_ids=ids, wait_for="delivered", deadline=time.time() + 30, poke_interval=0)
    assert first_event(trigger) == {"status": "success", "states": {ids[0]: "delivered", ids[1]: "read"}}
    assert len(gateway.requests_to("hookInfo")) == 2 + 3  # the fourth poll of the second card saw it read
    assert logged(logging.INFO) == ["Waiting for delivery: 1/2 delivered, 0 failed, 1 waiting"] * lines


def test_poke_mode_returns_each_state_and_leaves_no_connection_open(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", acks={"79003333333@c.us": [Ack("read")]})
    ids = [sent_card(gateway), sent_card(gateway, "79003333333")]
    sensor = ChatApiDeliverySensor(task_id="wait", message_ids=ids, deferrable=False, poke_interval=0.05, timeout=10)
    assert sensor.execute({}) == {ids[0]: "delivered", ids[1]: "read"}  # type: ignore[arg-type]
    assert gateway.wait_until_no_open_connections(timeout=2.0) == 0


def test_the_sensor_takes_its_timeout_as_seconds_or_a_timedelta_as_airflows_sensors_do() -> None:
    """Issue 21, item 4: ``timeout=timedelta(minutes=30)`` raised a bare TypeError when the DAG was parsed."""
    from datetime import timedelta

    from airflow_provider_chatapi.exceptions import InvalidInputError

    assert (
        ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A", timeout=timedelta(minutes=30)).timeout_seconds
        == 1800
    )
    assert ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A", timeout=90).timeout_seconds == 90
    for bad in ("30", -1, timedelta(0), float("nan"), None):
        with pytest.raises(InvalidInputError, match=r"^timeout="):
            ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A", timeout=bad)
