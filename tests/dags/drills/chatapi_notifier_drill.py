"""A task that fails, with a Chat API notifier called (as the DAG processor does) and, on Airflow 3.1+ where
notifiers can be awaited, one awaited (as the triggerer does) in its failure callbacks; and a notifier as
the DAG's own failure callback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier, send_chatapi_notification


def awaited(notifier: ChatApiNotifier) -> Callable[[Any], None]:
    """A callback that awaits the notifier, so that its async path runs."""

    def callback(context: Any) -> None:
        notifier.context = context

        async def notify() -> None:
            await notifier

        asyncio.run(notify())

    return callback


with DAG(
    "chatapi_notifier_drill",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"group": "120363041234567890@g.us", "on_call": "+7 900 111-11-11"},
    on_failure_callback=ChatApiNotifier(chat_id="{{ params.group }}", contact_ids=["79003333333"]),
) as drill:
    callbacks = [send_chatapi_notification(chat_id="{{ params.group }}", contact_ids="{{ params.on_call }}")]
    if AIRFLOW_V_3_1_PLUS:
        callbacks.append(awaited(ChatApiNotifier(phone="{{ params.on_call }}", contact_ids=["79002222222"])))

    @task(on_failure_callback=callbacks)
    def load() -> None:
        raise RuntimeError("the nightly load failed")

    load()
