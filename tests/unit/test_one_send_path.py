"""One path per job: the operator, the notifier and a user's hook call cross the same package frames from
the hook's send method down to the HTTP request; the fan-out operator and ``asend_to_many`` likewise.
After each operator and the notifier finish, the gateway sees none of their connections left open."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_chatapi
from airflow_provider_chatapi.hooks import _http
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.testing import StandInGateway

PACKAGE = str(Path(airflow_provider_chatapi.__file__).parent)
CARDS = ["79001111111"]
Frames = list[tuple[str, str]]


@pytest.fixture
def requests_made(monkeypatch: pytest.MonkeyPatch) -> list[Frames]:
    """The package frames at each HTTP request, from the outermost down: the call stack, with the plan's
    suspended generator frames (a plan yields each request for the hook to make) where the hook drives it."""
    seen: list[Frames] = []

    def record() -> None:
        frames: Frames = []
        frame = sys._getframe(2)  # the transport's caller
        while frame is not None:
            code = frame.f_code
            if code.co_filename.startswith(PACKAGE):
                if code.co_name in ("_drive", "_adrive"):
                    frames[:0] = plan_frames(frame.f_locals["plan"])
                frames.insert(0, (Path(code.co_filename).name, code.co_name))
            frame = frame.f_back
        seen.append(frames)

    def sync_call(*args: Any) -> Any:
        record()
        return sync_transport(*args)

    async def async_call(*args: Any) -> Any:
        record()
        return await async_transport(*args)

    sync_transport, async_transport = _http.call_with_requests, _http.call_with_httpx
    monkeypatch.setattr(_http, "call_with_requests", sync_call)
    monkeypatch.setattr(_http, "call_with_httpx", async_call)
    return seen


def plan_frames(plan: Any) -> Frames:
    """A suspended plan and the plans it delegates to (``yield from``), outermost first."""
    frames: Frames = []
    while plan is not None and hasattr(plan, "gi_code"):
        frames.append((Path(plan.gi_code.co_filename).name, plan.gi_code.co_name))
        plan = plan.gi_yieldfrom
    return frames


def below(frames: Frames, method: str) -> Frames:
    """The frames from the hook's ``method`` down to the transport."""
    names = [name for _, name in frames]
    assert method in names, frames
    return frames[names.index(method) :]


def test_a_send_crosses_the_same_frames_from_operator_notifier_and_hook(
    gateway: StandInGateway, requests_made: list[Frames]
) -> None:
    SendContactOperator(task_id="send", contact_ids=CARDS, phone="79002222222").execute({})  # type: ignore[arg-type]
    ChatApiNotifier(contact_ids=CARDS, phone="79003333333").notify({})  # type: ignore[arg-type]
    with ChatApiHook() as hook:
        hook.send_contact(CARDS, phone="79004444444")

    operator, notifier, hook_call = (below(frames, "send_contact") for frames in requests_made)
    assert operator == notifier == hook_call
    assert ("record.py", "send_plan") in hook_call and hook_call[-1] == ("chatapi.py", "_call")
    assert len(gateway.messages) == 3


def test_a_fan_out_crosses_the_same_frames_from_the_operator_and_the_hook(
    gateway: StandInGateway, requests_made: list[Frames]
) -> None:
    recipients = ["79002222222", "79003333333"]
    SendContactToManyOperator(task_id="many", contact_ids=CARDS, recipients=recipients).execute({})  # type: ignore[arg-type]

    async def fan_out() -> None:
        hook = ChatApiHook()
        try:
            await hook.asend_to_many(CARDS, ["79004444444", "79005555555"])
        finally:
            await hook.aclose()

    asyncio.run(fan_out())
    paths = [below(frames, "run_one") for frames in requests_made]
    assert len(paths) == 4 and all(path == paths[0] for path in paths)
    assert ("record.py", "send_plan") in paths[0]
    assert paths[0][-2:] == [("chatapi.py", "_acall"), ("_http.py", "__call__")]  # through the batch's Pacer
    assert len(gateway.messages) == 4


def test_operators_and_the_notifier_leave_no_connection_open(stand_in: Any) -> None:
    """Closed, not merely dropped: each test keeps a reference to the HTTP session (as a user who called
    ``hook.get_conn()`` would), so a session that is let go without ``close()`` stays connected and shows."""
    gateway = stand_in()

    def left_open() -> int:
        return gateway.wait_until_no_open_connections(timeout=2.0)

    single = SendContactOperator(task_id="send", contact_ids=CARDS, phone="79002222222")
    kept = [single.hook.get_conn()]
    single.execute({})  # type: ignore[arg-type]
    assert (gateway.connections_accepted, left_open()) == (1, 0)
    SendContactToManyOperator(task_id="many", contact_ids=CARDS, recipients=["79003333333"]).execute({})  # type: ignore[arg-type]
    assert (gateway.connections_accepted, left_open()) == (2, 0)
    notifier = ChatApiNotifier(contact_ids=CARDS, phone="79004444444")
    kept.append(notifier.hook.get_conn())
    notifier.notify({})  # type: ignore[arg-type]
    assert (gateway.connections_accepted, left_open()) == (3, 0)
    asyncio.run(ChatApiNotifier(contact_ids=CARDS, phone="79005555555").async_notify({}))  # type: ignore[arg-type]
    assert (gateway.connections_accepted, left_open()) == (4, 0)
    assert len(gateway.messages) == 4 and len(kept) == 2


def test_a_hook_keeps_its_connection_until_closed(stand_in: Any) -> None:
    """The control for the test above: a connection left open does show."""
    gateway = stand_in()
    hook = ChatApiHook()
    hook.send_contact(CARDS, phone="79002222222")
    assert gateway.wait_until_no_open_connections(timeout=0.3) == 1
    hook.close()
    assert gateway.wait_until_no_open_connections(timeout=2.0) == 0

    async def send_and_keep() -> Any:
        await hook.asend_contact(CARDS, phone="79003333333")
        assert gateway.wait_until_no_open_connections(timeout=0.3) == 1
        await hook.aclose()

    asyncio.run(send_and_keep())
    assert gateway.wait_until_no_open_connections(timeout=2.0) == 0
