"""One-send DAGs for the fault and retry tests: the stand-in gateway is scripted before each run.

``chatapi_fault_drill`` retries in place twice (HTTP) and once as a task; ``chatapi_retry_drill`` leaves every
retry to Airflow, so that each of its three tries meets the gateway's next scripted answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_chatapi.operators.chatapi import SendContactOperator


def one_send(dag_id: str, *, max_retries: int, retries: int) -> Any:
    with DAG(dag_id, schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:
        SendContactOperator(
            task_id="send",
            phone="79002222222",
            contact_ids=["79001111111"],
            timeout=0.5,
            max_retries=max_retries,
            retries=retries,
            retry_delay=timedelta(seconds=0),
        )
    return dag


fault_drill = one_send("chatapi_fault_drill", max_retries=2, retries=1)
retry_drill = one_send("chatapi_retry_drill", max_retries=0, retries=2)
