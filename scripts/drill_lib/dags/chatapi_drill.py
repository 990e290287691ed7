"""The drill's DAGs: a fan-out of a contact card to DRILL_RECIPIENTS recipients, and a quick task beside it.

Per dialect, three DAGs of the same two independent tasks, ``send`` (the fan-out) and ``other`` (an
``EmptyOperator``, for a scenario to clear while ``send`` waits for its retry):

- ``drill_fan_out_<dialect>``: ``send`` retries after 1 s;
- ``drill_slow_retry_<dialect>``: ``send`` retries after DRILL_SLOW_RETRY seconds (default 5), time enough
  to clear ``other`` while the retry waits;
- ``drill_shuffled_<dialect>``: as ``drill_fan_out_<dialect>``, but ``send`` renders its recipients, at the
  start of each try, from the Variable ``drill_shuffled_<dialect>`` (a JSON array), which the ``shuffled``
  scenario rewrites in another order between a try and its retry.

``<dialect>`` is ``chatapi`` (connection ``chatapi_drill_chatapi``, a classic stand-in) or ``1msg``
(``chatapi_drill_1msg``); scripts/drill sets both as ``AIRFLOW_CONN_*`` variables in every Airflow process.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:  # Airflow 2.11 without the standard provider
    from airflow.operators.empty import EmptyOperator  # type: ignore[no-redef]

from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator

RECIPIENTS = [f"7901{number:07d}" for number in range(int(os.environ.get("DRILL_RECIPIENTS", "2000")))]
RETRY_DELAYS = {"fan_out": 1.0, "slow_retry": float(os.environ.get("DRILL_SLOW_RETRY", "5")), "shuffled": 1.0}

for dialect in ("chatapi", "1msg"):
    for kind, retry_delay in RETRY_DELAYS.items():
        # A JSON array rendered as text: the operator takes a rendered list as it takes a list.
        recipients = "{{ var.value.drill_shuffled_" + dialect + " }}" if kind == "shuffled" else RECIPIENTS
        with DAG(
            f"drill_{kind}_{dialect}",
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
                recipients=recipients,
                max_in_flight=20,
                timeout=10,
                retries=3,
                retry_delay=timedelta(seconds=retry_delay),
            )
            EmptyOperator(task_id="other")
        globals()[dag.dag_id] = dag
