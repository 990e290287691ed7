"""One task that sends a card to five recipients concurrently, with one task retry, for the fault tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator

RECIPIENTS = ["79001000001", "79001000002", "79001000003", "79001000004", "120363041234567890@g.us"]

with DAG("chatapi_fan_out_drill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as drill:
    SendContactToManyOperator(
        task_id="send",
        contact_ids=["79009999999"],
        recipients=RECIPIENTS,
        max_in_flight=2,
        timeout=0.5,
        max_retries=2,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
