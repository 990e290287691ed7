"""One send with two task retries and no HTTP retries: each try meets the gateway's next scripted answer."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_chatapi.operators.chatapi import SendContactOperator

with DAG("chatapi_retry_drill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as drill:
    SendContactOperator(
        task_id="send",
        phone="79002222222",
        contact_ids=["79001111111"],
        timeout=0.5,
        max_retries=0,
        retries=2,
        retry_delay=timedelta(seconds=0),
    )
