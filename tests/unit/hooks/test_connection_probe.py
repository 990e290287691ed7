"""Test connection (the Airflow UI's button, and its async twin): one probe of the instance's status that
wakes nothing, what each dialect's answer means, and a bad form named by its field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import airflow_provider_chatapi.hooks.chatapi as hooks
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.testing import Fault, StandInGateway


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_test_connection_probes_status_without_waking_up(
    stand_in: Callable[..., StandInGateway], transport: str
) -> None:
    gateway = stand_in()
    hook = ChatApiHook()
    ok, message = hook.test_connection() if transport == "sync" else asyncio.run(hook.atest_connection())
    assert ok and "'authenticated'" in message
    (request,) = gateway.requests
    assert (request.method, request.endpoint, request.query.get("no_wakeup")) == ("GET", "status", "true")


def test_test_connection_reports_an_unlinked_instance(stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    gateway.account_status = "got qr code"
    ok, message = ChatApiHook().test_connection()
    assert not ok and "scan the QR code" in message


def test_test_connection_reports_a_wrong_token(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in()
    connect("chatapi_default", gateway, password="wrong-token")
    ok, message = ChatApiHook().test_connection()
    assert not ok and "HTTP 401" in message and "Wrong token" in message


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_test_connection_probes_once_and_speaks_of_the_probe(
    stand_in: Callable[..., StandInGateway], transport: str
) -> None:
    gateway = stand_in()
    gateway.inject(Fault.unavailable(), endpoint="status")
    hook = ChatApiHook(max_retries=5)
    ok, message = hook.test_connection() if transport == "sync" else asyncio.run(hook.atest_connection())
    assert not ok and len(gateway.requests) == 1
    assert "status probe failed (HTTP 503)" in message and "try again later" in message
    assert "nothing was queued" not in message


def test_test_connection_gives_up_quickly(
    stand_in: Callable[..., StandInGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = stand_in()
    monkeypatch.setattr(hooks, "_PROBE_TIMEOUT", 0.3)
    gateway.inject(Fault.slow(2.0), endpoint="status")
    started = time.monotonic()
    ok, message = ChatApiHook().test_connection()
    assert not ok and time.monotonic() - started < 1.5 and "timed out" in message


def test_test_connection_names_the_form_field_not_the_connection(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None]
) -> None:
    gateway = stand_in(connection=None)
    connect("tmp_4f2a", host=gateway.api_url)
    ok, message = ChatApiHook("tmp_4f2a").test_connection()
    assert (ok, message) == (False, "API token: the instance's API token is missing")
    connect("tmp_4f2a", password="t0ken")
    ok, message = ChatApiHook("tmp_4f2a").test_connection()
    assert not ok and message.startswith("Instance ID: the instance id is missing") and "tmp_4f2a" not in message


@pytest.mark.parametrize(
    ("status", "ok", "meaning"), [("connected", True, "sends messages"), ("disconnected", False, "lost its link")]
)
def test_test_connection(stand_in: Callable[..., StandInGateway], status: str, ok: bool, meaning: str) -> None:
    """On 1msg, the channel's status."""
    gateway = stand_in("1msg", account_status=status)
    healthy, message = ChatApiHook().test_connection()
    assert healthy is ok and f"channel status {status!r}" in message and meaning in message
    (request,) = gateway.requests
    assert (request.method, request.endpoint) == ("GET", "status")


@pytest.mark.parametrize(
    ("instance_id", "hint"),
    [
        ("999999", "No such instance at this address: check the API URL, the Instance ID and the Dialect."),
        (None, "Check the API token (and, on 1msg, that the channel may use the API)."),
    ],
)
def test_test_connection_keeps_the_capitals_of_what_it_names(
    stand_in: Callable[..., StandInGateway], connect: Callable[..., None], instance_id: str | None, hint: str
) -> None:
    gateway = stand_in()
    if instance_id is None:
        connect("chatapi_default", gateway, password="a-wrong-token")
    else:
        connect("chatapi_default", gateway, host=f"http://127.0.0.1:{gateway.port}/instance{instance_id}")
    ok, message = ChatApiHook().test_connection()
    assert not ok and message.endswith(hint)
