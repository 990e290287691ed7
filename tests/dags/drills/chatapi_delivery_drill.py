"""Cards whose delivery the sensor waits for, each ending another way: delivered after a delay (deferred, and
in poke mode), read without delivered, failed, past the deadline, on a classic gateway, on a 1msg channel
without hookInfo, queued as a 1msg job with ``fail_on_job_ids``. Every sensor has retries: none may be used."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_chatapi.operators.chatapi import SendContactOperator
from airflow_provider_chatapi.sensors.chatapi import ChatApiDeliverySensor

# task suffix: (recipient, connection, the sensor's own arguments)
CASES = {
    "delayed": ("79002222222", "chatapi_1msg", {}),
    "polled": ("79002222222", "chatapi_1msg", {"deferrable": False, "mode": "poke"}),
    "read": ("79003333333", "chatapi_1msg", {"wait_for": "read"}),
    "failed": ("79004444444", "chatapi_1msg", {}),
    "deadline": ("79005555555", "chatapi_1msg", {"timeout": 2}),
    "classic": ("79002222222", "chatapi_classic", {}),
    "no_hook_info": ("79002222222", "chatapi_no_hook_info", {}),
    "job_id": ("79002222222", "chatapi_jobs", {"fail_on_job_ids": True}),
}

with DAG("chatapi_delivery_drill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as drill:
    for case, (phone, conn_id, options) in CASES.items():
        send = SendContactOperator(
            task_id=f"send_{case}", chatapi_conn_id=conn_id, contact_ids=["79001111111"], phone=phone
        )
        send >> ChatApiDeliverySensor(
            task_id=f"wait_{case}",
            chatapi_conn_id=conn_id,
            message_ids=send.output,
            poke_interval=0.3,
            retries=2,
            retry_delay=timedelta(seconds=0),
            **{"deferrable": True, "timeout": 30, **options},
        )
