"""The drill's DAGs: one fan-out of a contact card to DRILL_RECIPIENTS recipients per dialect.

``drill_fan_out_chatapi`` uses the connection ``chatapi_drill_chatapi`` (a classic stand-in) and
``drill_fan_out_1msg`` the connection ``chatapi_drill_1msg`` (a 1msg stand-in, ``"dialect": "1msg"`` in its
extra); scripts/drill sets both as ``AIRFLOW_CONN_*`` variables in every Airflow process.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator

RECIPIENTS = [f"7901{number:07d}" for number in range(int(os.environ.get("DRILL_RECIPIENTS", "2000")))]

for dialect in ("chatapi", "1msg"):
    with DAG(
        f"drill_fan_out_{dialect}",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["drill"],
    ) as dag:
        SendContactToManyOperator(
            task_id="send",
            chatapi_conn_id=f"chatapi_drill_{dialect}",
            contact_ids=["79009999999"],
            recipients=RECIPIENTS,
            max_in_flight=20,
            timeout=10,
            retries=3,
            retry_delay=timedelta(seconds=1),
        )
    globals()[dag.dag_id] = dag
