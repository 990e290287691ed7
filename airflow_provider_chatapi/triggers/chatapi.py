"""The trigger that waits in Airflow's triggerer for WhatsApp messages to be delivered or read."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_chatapi import DEFAULT_CONN_ID
from airflow_provider_chatapi._protocol.acks import DeliveryWatch, tally

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["PROGRESS_INTERVAL", "ChatApiDeliveryTrigger"]

PROGRESS_INTERVAL = 180.0
"""Seconds between two progress lines of a waiting trigger, at least (the first comes after the first poll)."""


class ChatApiDeliveryTrigger(BaseTrigger):
    """Poll 1msg's delivery acks of ``message_ids`` until each reaches ``wait_for``, one fails, or ``deadline``.

    Its serialized arguments hold the connection id, never the token: the triggerer reads the connection
    itself. A 429, a 5xx or a lost answer doubles the pause (up to five minutes) instead of ending the wait.
    While it waits it logs how far the messages got (``180/200 delivered, 0 failed, 20 waiting``) after its
    first poll, then at most every :data:`PROGRESS_INTERVAL` seconds.

    :param message_ids: the WhatsApp message ids to watch.
    :param wait_for: ``"delivered"`` or ``"read"``.
    :param deadline: when to give up, in unix seconds; the event then says ``timeout``.
    :param chatapi_conn_id: the ``chatapi`` connection to ask through.
    :param poke_interval: seconds between polls.
    :param max_in_flight: requests in flight at once when polling many messages.

    Yields one event: ``{"status": "success", "states": {id: state}}``, or ``failed`` (with ``message_id``,
    ``recipient``, ``reason``, ``code``, ``meaning``), ``timeout``, ``unavailable`` or ``error``, each with an
    ``error`` text and the ``states`` the messages had reached.
    """

    def __init__(
        self,
        *,
        message_ids: list[str],
        wait_for: str,
        deadline: float,
        chatapi_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 30.0,
        max_in_flight: int = 10,
    ) -> None:
        super().__init__()
        self.message_ids = list(message_ids)
        self.wait_for = wait_for
        self.deadline = deadline
        self.chatapi_conn_id = chatapi_conn_id
        self.poke_interval = poke_interval
        self.max_in_flight = max_in_flight

    def serialize(self) -> tuple[str, dict[str, Any]]:
        names = ("message_ids", "wait_for", "deadline", "chatapi_conn_id", "poke_interval", "max_in_flight")
        return f"{type(self).__module__}.{type(self).__qualname__}", {name: getattr(self, name) for name in names}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        hook = ChatApiHook(chatapi_conn_id=self.chatapi_conn_id)
        watch = DeliveryWatch(self.message_ids, self.wait_for)
        pause = self.poke_interval
        # Airflow itself shows only "trigger starting" for what may be hours: the first poll's tally comes at once.
        last_line = float("-inf")
        try:
            while True:
                results = await hook.aget_deliveries(watch.pending(), max_in_flight=self.max_in_flight)
                event, back_off = watch.absorb(results)
                if event is None and time.monotonic() - last_line >= PROGRESS_INTERVAL:
                    self.log.info("Waiting for delivery: %s", tally(watch.states, self.wait_for))
                    last_line = time.monotonic()
                left = self.deadline - time.time()
                if event is None and left <= 0:
                    event = {"status": "timeout", "error": watch.short_of_goal(), "states": watch.states}
                if event is not None:
                    yield TriggerEvent(event)
                    return
                # Twice the pause after a poll the gateway could not answer, five minutes at most.
                pause = min(pause * 2, 300.0) if back_off else self.poke_interval
                if back_off:
                    self.log.warning("The gateway could not answer this poll; asking again in %.0f s", pause)
                await asyncio.sleep(min(pause, left))
        finally:
            await hook.aclose()
