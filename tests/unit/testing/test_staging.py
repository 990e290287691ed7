"""The stand-in as a staging tool: its control API, its state file across a killed process, its command line.

Real HTTP on loopback. Where the point is the command line (a restart), the stand-in runs in a process of
its own, started with ``subprocess`` and killed with SIGKILL, not stopped cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_chatapi.testing import StandInGateway
from airflow_provider_chatapi.testing._state import State

MODULE = "airflow_provider_chatapi.testing"
PHONE = "17472822486"
CHAT = f"{PHONE}@c.us"
CLASSIC_SEND = {"phone": PHONE, "contactId": ["79001111111@c.us"]}
ANN = {
    "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
    "phones": [{"phone": "+7 900 111-11-11", "type": "CELL", "wa_id": "79001111111"}],
}
TIMEOUT = 5


class Running:
    """A stand-in in a process of its own: its URLs, read from the lines it prints."""

    def __init__(self, process: subprocess.Popen[bytes], connection: dict[str, Any]) -> None:
        self.process = process
        self.api_url = connection["host"]
        self.params = {"token": connection["password"]}
        self.base_url = self.api_url.rsplit("/", 1)[0]

    def control(self, method: str, name: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.base_url}/_standin/{name}", timeout=TIMEOUT, **kwargs)

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(f"{self.api_url}/sendContact", params=self.params, json=body, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def get(self, endpoint: str, **query: str) -> dict[str, Any]:
        answer = requests.get(f"{self.api_url}/{endpoint}", params={**self.params, **query}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


def read_lines(process: subprocess.Popen[bytes], count: int, deadline: float) -> list[str]:
    """The first ``count`` lines the process prints, read as they come (no buffering hides them)."""
    assert process.stdout is not None
    printed = b""
    while printed.count(b"\n") < count:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(process.stdout.fileno(), 4096) if ready else b""
        if not chunk:
            raise TimeoutError(f"the stand-in printed {printed!r} and no more (exit code {process.poll()})")
        printed += chunk
    return printed.decode().splitlines()[:count]


def wait_for_port(url: str, deadline: float) -> None:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port}")
        time.sleep(0.02)


@contextlib.contextmanager
def stand_in(*options: str) -> Iterator[Running]:
    """Start ``python -m airflow_provider_chatapi.testing --port 0 OPTIONS``; SIGKILL it at the end."""
    command = [sys.executable, "-m", MODULE, "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, bufsize=0)
    try:
        deadline = time.monotonic() + 10
        banner, connection = read_lines(process, 2, deadline)
        assert banner.startswith("Stand-in Chat API gateway (")
        name, _, value = connection.strip().partition("=")
        assert name == "AIRFLOW_CONN_CHATAPI_DEFAULT"
        running = Running(process, json.loads(value.strip("'")))
        wait_for_port(running.api_url, deadline)
        yield running
    finally:
        kill(process)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no clean stop, no last snapshot."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()


# ---- the state file, across a killed process --------------------------------------------------------


def test_the_classic_cards_survive_a_killed_process(tmp_path: Path) -> None:
    state = str(tmp_path / "standin.json")
    with stand_in("--state", state) as first:
        ids = [first.send({**CLASSIC_SEND, "phone": f"1747282248{n}"})["id"] for n in range(3)]
        kill(first.process)  # at once: the last snapshot may not hold them, the journal does
    with stand_in("--state", state) as second:
        kept = second.control("GET", "messages").json()["messages"]
        assert [card["id"] for card in kept] == ids
        assert [card["message_number"] for card in kept] == [1, 2, 3]
        assert all(card["delivered"] and card["contact_ids"] == ["79001111111@c.us"] for card in kept)
        history = second.get("messages")
        assert [(m["id"], m["messageNumber"]) for m in history["messages"]] == list(zip(ids, [1, 2, 3], strict=True))
        sends = second.control("GET", "requests", params={"endpoint": "sendContact"}).json()["requests"]
        assert [request["json"]["phone"] for request in sends] == [f"1747282248{n}" for n in range(3)]
        second.send(CLASSIC_SEND)  # the numbering goes on
        assert second.get("messages")["lastMessageNumber"] == 4


def test_1msg_cards_and_the_ack_clock_survive_a_killed_process(tmp_path: Path) -> None:
    state, scripts = str(tmp_path / "standin.json"), tmp_path / "acks.json"
    scripts.write_text(json.dumps({CHAT: [{"status": "sent"}, {"status": "delivered", "after_polls": 1}]}))
    options = ("--dialect", "1msg", "--state", state, "--acks-json", str(scripts))
    with stand_in(*options) as first:
        sent = first.send({"phone": PHONE, "contacts": [ANN]})
        first_poll = first.get("hookInfo", messageId=sent["id"])["hooks"]
        assert [event["status"] for event in first_poll] == ["sent"]
        kill(first.process)
    with stand_in(*options) as second:
        # the second poll of all: the card's clock and its poll count were kept
        second_poll = second.get("hookInfo", messageId=sent["id"])["hooks"]
        assert [event["status"] for event in second_poll] == ["sent", "delivered"]
        assert second_poll[0] == first_poll[0]
        (card,) = second.control("GET", "messages").json()["messages"]
        assert (card["id"], card["chat_id"], card["contacts"]) == (sent["id"], CHAT, [ANN])
        assert [m["id"] for m in second.get("messages")["messages"]] == [sent["id"]]


def test_a_torn_last_journal_line_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "standin.json"
    with StandInGateway() as gateway:
        state = State(path).attach(gateway)
        requests.post(f"{gateway.api_url}/sendContact", params={"token": gateway.token}, json=CLASSIC_SEND, timeout=5)
        (sent,) = gateway.messages
    state.close()  # a snapshot; then a change in the journal, and half of another
    path.with_name("standin.json.journal").write_text(
        json.dumps({"seq": 3, "event": "deliver", "value": None}) + '\n{"seq": 4, "event": "mess'
    )
    loaded = State(path).load()
    assert [message["id"] for message in loaded["messages"]] == [sent.id]
    assert loaded["seq"] == 3


def test_a_state_file_of_the_other_dialect_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "standin.json"
    State(path).attach(StandInGateway()).close()
    with pytest.raises(ValueError, match="chatapi gateway's state, not 1msg's"):
        State(path).attach(StandInGateway(dialect="1msg"))


# ---- the control API ---------------------------------------------------------------------------------


@pytest.fixture
def gateway() -> Iterator[StandInGateway]:
    with StandInGateway(account_status="loading") as running:
        yield running


def control(gateway: StandInGateway, method: str, name: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{gateway.base_url}/_standin/{name}", timeout=TIMEOUT, **kwargs)


def send(gateway: StandInGateway) -> requests.Response:
    return requests.post(
        f"{gateway.api_url}/sendContact", params={"token": gateway.token}, json=CLASSIC_SEND, timeout=TIMEOUT
    )


def test_faults_injected_over_the_control_api_answer_the_next_requests(gateway: StandInGateway) -> None:
    faults = [{"kind": "rate_limited", "retry_after": 1}, {"kind": "server_error", "status": 500, "queued": True}]
    injected = control(gateway, "POST", "faults", json={"endpoint": "sendContact", "faults": faults, "times": 2})
    assert (injected.status_code, injected.json()) == (200, {"endpoint": "sendContact", "injected": 4})
    answers = [send(gateway) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [429, 500, 429, 500, 200]
    assert answers[0].headers["Retry-After"] == "1"
    assert len(gateway.messages) == 3  # the two 500s hid queued cards


def test_each_repetition_of_a_fault_is_its_own() -> None:
    with StandInGateway(dialect="1msg") as onemsg:
        injected = control(onemsg, "POST", "faults", json={"faults": [{"kind": "queued_as_job"}], "times": 3})
        assert injected.json() == {"endpoint": "sendContact", "injected": 3}
        url, token = f"{onemsg.api_url}/sendContact", {"token": onemsg.token}
        answers = [
            requests.post(url, params=token, json={"phone": PHONE, "contacts": [ANN]}, timeout=TIMEOUT).json()
            for _ in range(3)
        ]
    assert [answer["sent"] for answer in answers] == [False] * 3
    assert len({answer["jobId"] for answer in answers}) == 3, answers


def test_requests_carry_when_they_arrived(gateway: StandInGateway) -> None:
    before = time.monotonic()
    send(gateway)
    time.sleep(0.05)
    send(gateway)
    after = time.monotonic()
    first, second = gateway.requests
    assert before <= first.received_at < second.received_at <= after
    assert second.received_at - first.received_at >= 0.05
    listed = control(gateway, "GET", "requests").json()["requests"]
    assert [request["received_at"] for request in listed] == [first.received_at, second.received_at]


def test_an_unknown_fault_kind_is_a_400_naming_it(gateway: StandInGateway) -> None:
    unknown = control(gateway, "POST", "faults", json={"faults": [{"kind": "slow", "delay": 0}, {"kind": "meteor"}]})
    assert unknown.status_code == 400 and "'meteor'" in unknown.json()["error"]
    wrong = control(gateway, "POST", "faults", json={"faults": [{"kind": "rate_limited", "seconds": 1}]})
    assert wrong.status_code == 400 and "rate_limited" in wrong.json()["error"]
    assert control(gateway, "POST", "faults", json={"faults": []}, params={}).status_code == 200
    assert control(gateway, "POST", "faults", data=b"not json").status_code == 400
    assert send(gateway).status_code == 200  # nothing was injected by the refused ones


def test_control_requests_are_not_recorded(gateway: StandInGateway) -> None:
    send(gateway)
    for name in ("requests", "messages", "stats", "nowhere"):
        control(gateway, "GET", name)
    stats = control(gateway, "GET", "stats").json()
    assert stats["requests"] == {"sendContact": 1}
    assert (stats["messages"], stats["queued"], stats["errors"]) == (1, 1, [])
    assert stats["connections_accepted"] >= 1 and stats["open_connections"] >= 0
    assert [request.endpoint for request in gateway.requests] == ["sendContact"]
    (recorded,) = control(gateway, "GET", "requests").json()["requests"]
    assert (recorded["method"], recorded["endpoint"]) == ("POST", "sendContact")
    assert recorded["query"] == {"token": gateway.token}  # as received: the token is the stand-in's own
    assert control(gateway, "GET", "requests", params={"endpoint": "status"}).json() == {"requests": []}


def test_deliver_queue_and_reset(gateway: StandInGateway) -> None:
    send(gateway)
    (queued,) = control(gateway, "GET", "messages").json()["messages"]
    assert queued["delivered"] is False and queued["contacts"] == [] and isinstance(queued["time"], int)
    assert control(gateway, "POST", "deliver_queue").json() == {"delivered": 1}
    assert [message.delivered for message in gateway.messages] == [True]
    control(gateway, "POST", "faults", json={"faults": [{"kind": "unavailable"}]})
    assert control(gateway, "POST", "reset").json() == {"reset": True}
    assert (gateway.messages, gateway.requests) == ([], [])
    assert send(gateway).status_code == 200  # the pending fault went with the reset


def test_unknown_control_paths_and_methods(gateway: StandInGateway) -> None:
    missing = control(gateway, "GET", "nowhere")
    assert missing.status_code == 404 and "/_standin/stats" in missing.json()["error"]
    assert control(gateway, "GET", "reset").status_code == 405
    assert control(gateway, "POST", "stats").status_code == 405
    with StandInGateway(dialect="1msg") as onemsg:
        assert control(onemsg, "POST", "deliver_queue").status_code == 400
    assert gateway.requests == []


# ---- the command line --------------------------------------------------------------------------------


def test_help_documents_every_option_and_the_control_api() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", MODULE, "--help"], capture_output=True, text=True, timeout=TIMEOUT, check=True
    ).stdout
    for option in ("--dialect", "--no-history", "--port", "--token", "--instance-id", "--account-status"):
        assert option in shown
    for option in ("--delay", "--state", "--acks-json", "/_standin/faults", "/_standin/reset", "rate_limited"):
        assert option in shown


def test_the_command_line_takes_a_token_and_an_instance_id() -> None:
    with stand_in("--token", "t0ken", "--instance-id", "777") as running:
        assert running.api_url.endswith("/instance777") and running.params == {"token": "t0ken"}
        assert running.get("status") == {"accountStatus": "authenticated"}
