"""The stand-in gateway counts its clients' TCP connections: real clients over loopback show it.

These are what a test of the provider leans on to check, from the gateway's side, that the hook closed
its ``requests.Session`` and its ``httpx.AsyncClient``: ``gateway.wait_until_no_open_connections() == 0``.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import requests

from airflow_provider_chatapi.testing import Fault, StandInGateway

CARD = {"phone": "17472822486", "contactId": ["79001111111@c.us"]}


def status_url(gateway: StandInGateway) -> str:
    return f"{gateway.api_url}/status?token={gateway.token}"


def send_url(gateway: StandInGateway) -> str:
    return f"{gateway.api_url}/sendContact?token={gateway.token}"


def test_a_session_keeps_one_connection_open_until_it_is_closed(gateway: StandInGateway) -> None:
    session = requests.Session()
    try:
        for _ in range(3):
            assert session.post(send_url(gateway), json=CARD, timeout=5).json()["sent"] is True
        assert len(gateway.messages) == 3
        assert {request.client_port for request in gateway.requests} == {gateway.requests[0].client_port}
        assert (gateway.connections_accepted, gateway.open_connections) == (1, 1)
    finally:
        session.close()
    started = time.monotonic()
    assert gateway.wait_until_no_open_connections() == 0
    assert time.monotonic() - started < 1.0  # woken by the close, not by the timeout
    assert (gateway.connections_accepted, gateway.open_connections) == (1, 0)


def test_an_async_client_keeps_one_connection_open_until_it_is_closed(gateway: StandInGateway) -> None:
    async def three_requests_then_close() -> tuple[int, int]:
        client = httpx.AsyncClient(timeout=5)
        try:
            for _ in range(3):
                answer = await client.get(status_url(gateway))
                assert answer.json() == {"accountStatus": "authenticated"}
            return gateway.connections_accepted, gateway.open_connections
        finally:
            await client.aclose()

    assert asyncio.run(three_requests_then_close()) == (1, 1)
    assert gateway.wait_until_no_open_connections() == 0
    assert (gateway.connections_accepted, len(gateway.requests)) == (1, 3)


def test_a_session_never_closed_keeps_its_connection_open(gateway: StandInGateway) -> None:
    """The control: the check fails when a client does not close its connection."""
    session = requests.Session()
    try:
        session.get(status_url(gateway), timeout=5)
        started = time.monotonic()
        assert gateway.wait_until_no_open_connections(timeout=0.3) == 1
        assert time.monotonic() - started >= 0.3  # it waited the whole timeout
        assert (gateway.connections_accepted, gateway.open_connections) == (1, 1)
    finally:
        session.close()


def test_requests_without_a_session_leave_no_connection_open(gateway: StandInGateway) -> None:
    for _ in range(2):
        assert requests.post(send_url(gateway), json=CARD, timeout=5).status_code == 200
    assert gateway.wait_until_no_open_connections() == 0
    assert gateway.connections_accepted == 2  # a connection of its own for each


def test_a_connection_the_stand_in_resets_is_closed(gateway: StandInGateway) -> None:
    gateway.inject(Fault.reset_before_queueing())
    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            session.post(send_url(gateway), json=CARD, timeout=5)
        assert gateway.wait_until_no_open_connections() == 0  # the session is still open: the server closed it
        assert session.post(send_url(gateway), json=CARD, timeout=5).json()["sent"] is True
        assert (gateway.connections_accepted, gateway.open_connections) == (2, 1)


def test_reset_forgets_closed_connections_but_not_open_ones(gateway: StandInGateway) -> None:
    requests.get(status_url(gateway), timeout=5)
    assert gateway.wait_until_no_open_connections() == 0
    with requests.Session() as session:
        session.get(status_url(gateway), timeout=5)
        gateway.reset()
        # the session's connection is still open, and still counted: it may be used after the reset
        assert (gateway.connections_accepted, gateway.open_connections) == (1, 1)
        session.get(status_url(gateway), timeout=5)
        assert gateway.connections_accepted == 1  # reused, not accepted again
        requests.get(status_url(gateway), timeout=5)
        assert gateway.connections_accepted == 2
    assert gateway.wait_until_no_open_connections() == 0


def test_each_of_several_concurrent_connections_is_counted(gateway: StandInGateway) -> None:
    gateway.delay = 0.2  # the requests overlap, so the client opens a connection for each

    async def five_at_once() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            await asyncio.gather(*(client.get(status_url(gateway)) for _ in range(5)))
            return gateway.open_connections

    assert asyncio.run(five_at_once()) == 5
    assert gateway.wait_until_no_open_connections() == 0
    assert gateway.connections_accepted == 5


def test_stopping_closes_kept_alive_connections_without_waiting_for_them() -> None:
    gateway = StandInGateway().start()
    with requests.Session() as session:
        session.get(status_url(gateway), timeout=5)
        url = status_url(gateway)
        assert gateway.open_connections == 1
        started = time.monotonic()
        gateway.stop()
        assert time.monotonic() - started < 1.0
        assert gateway.wait_until_no_open_connections() == 0  # the stand-in hung up on the session
        with pytest.raises(requests.ConnectionError):  # and a stopped gateway answers nothing more
            session.get(url, timeout=5)
    assert gateway.connections_accepted == 1


def test_stopping_does_not_wait_for_a_slow_answer() -> None:
    gateway = StandInGateway().start()
    gateway.inject(Fault.slow(1.0), endpoint="status")
    url = status_url(gateway)
    failures: list[BaseException] = []

    def ask() -> None:
        try:
            requests.get(url, timeout=5)
        except requests.RequestException as error:
            failures.append(error)

    client = threading.Thread(target=ask)
    client.start()
    while not gateway.requests:
        time.sleep(0.01)
    started = time.monotonic()
    gateway.stop()
    assert time.monotonic() - started < 0.5
    client.join(timeout=5)
    assert failures and isinstance(failures[0], requests.ConnectionError)  # hung up on, not answered
    assert gateway.wait_until_no_open_connections() == 0  # once the handler is done with its delay
    assert gateway.errors == []
