"""Sends that fail in every way a token could leak, for the secrecy tests; each connection has its own token."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator

FAILURES = ("wrong_token", "server_error", "read_timeout", "refused")

with DAG("chatapi_secret_drill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as drill:
    for failure in FAILURES:
        SendContactOperator(
            task_id=failure,
            chatapi_conn_id=f"chatapi_{failure}",
            phone="{{ params.phone }}",
            contact_ids=["79001111111"],
            max_retries=0,
            params={"phone": "79002222222"},
        )
    SendContactOperator(
        task_id="sent",
        chatapi_conn_id="{{ params.conn }}",
        phone="79002222222",
        contact_ids="{{ params.contacts }}",
        params={"conn": "chatapi_sent", "contacts": ["79001111111"]},
    )
    SendContactToManyOperator(  # the async path: httpx logs every request's URL, token and all
        task_id="fanned_out",
        chatapi_conn_id="chatapi_sent",
        recipients=["79003333333", "79004444444"],
        contact_ids=["79001111111"],
    )
