"""The delivery sensor and its trigger without a DAG run: what is refused before any request, what the
trigger carries, and how it waits through a busy gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout, TaskDeferred

from airflow_provider_chatapi.exceptions import DeliveryFailedError, InvalidInputError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.sensors.chatapi import ChatApiDeliverySensor
from airflow_provider_chatapi.testing import Ack, Fault, StandInGateway
from airflow_provider_chatapi.triggers.chatapi import ChatApiDeliveryTrigger

TOKEN = "sensor-unit-token-91ab"


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


def test_a_job_id_is_refused_before_any_request(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg")

    class Ti:
        def xcom_pull(self, task_ids: list[str], key: str) -> Any:
            assert key == "chatapi_job_ids"
            return [["job_abc"], None]

    sensor = ChatApiDeliverySensor(task_id="wait", message_ids=["wamid.A", "job_abc"])
    sensor.upstream_task_ids.add("send")
    with pytest.raises(AirflowFailException, match=r"job_abc.*1msg job ids"):
        sensor.execute({"ti": Ti()})  # type: ignore[arg-type]
    assert gateway.requests == []


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


def test_a_failed_event_fails_the_task_with_the_delivery_error_behind_it() -> None:
    sensor = ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A")
    event = {"status": "failed", "error": "WhatsApp message wamid.A failed: x", "message_id": "wamid.A",
             "reason": "x", "code": 131026, "meaning": "the number cannot receive it"}  # fmt: skip
    with pytest.raises(AirflowFailException) as failed:
        sensor.execute_complete({}, event)  # type: ignore[arg-type]
    cause = failed.value.__cause__
    assert isinstance(cause, DeliveryFailedError) and (cause.message_id, cause.code) == ("wamid.A", 131026)


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
