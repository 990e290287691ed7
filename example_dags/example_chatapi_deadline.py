"""(7) A deadline alert (Airflow 3.1+): when a nightly load is not done 30 minutes after its run was queued,
the support group gets the on-call engineer's card, its title naming the late DAG and the deadline.

``AsyncCallback(ChatApiNotifier, kwargs={...})`` hands the triggerer the notifier's class and its arguments;
when the deadline passes, the triggerer builds the notifier with them and awaits it. Its templates render
in a small context: ``dag_run`` (the run as the REST API shows it: ``dag_id``, ``dag_run_id``, not
``run_id``, ``conf``, ``queued_at`` and its other dates as ISO text, ...) and ``deadline`` (``id``, and
``deadline_time``, a datetime), and nothing else: no ``params``, ``ti`` or ``task``. The card goes through
1msg (``chatapi_1msg``), which shows its title; a classic gateway sends a card as its number only.

Airflow before 3.1 has no deadline alerts: there this file defines no DAG.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier

try:
    from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task
except ImportError:  # Airflow before 3.1
    DeadlineAlert = None

ON_CALL = "+7 900 111-11-11"
SUPPORT_GROUP = "120363041234567890@g.us"

if DeadlineAlert is not None:
    with DAG(
        dag_id="example_chatapi_deadline",
        schedule="@daily",
        start_date=datetime(2025, 1, 1),
        catchup=False,
        deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(minutes=30),
            callback=AsyncCallback(
                ChatApiNotifier,
                kwargs={
                    "chat_id": SUPPORT_GROUP,
                    "contacts": [
                        {
                            "name": "Ann Lee",
                            "phone": ON_CALL,
                            "org": {
                                "company": "Acme",
                                "title": "On call: {{ dag_run.dag_id }} missed its"
                                " {{ deadline.deadline_time.strftime('%H:%M') }} UTC deadline",
                            },
                        }
                    ],
                    "chatapi_conn_id": "chatapi_1msg",
                },
            ),
        ),
        tags=["example", "chatapi"],
    ) as example_dag:

        @task
        def load() -> None:
            """The nightly load; its run must be done within 30 minutes of being queued."""

        load()

# Unlike the other examples, no `example_dag.test()`: on Airflow 3.3.2 `dag.test()` of a DAG with a deadline
# alert fails once its run succeeds (Airflow looks the alert up by its definition rather than its id).
