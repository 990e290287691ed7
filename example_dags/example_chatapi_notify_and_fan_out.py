"""Share the on-call engineer's card with everyone on a list at once, and alert a group when a load fails.

``send_to_all`` sends one card to every recipient from a single task, up to ten requests in flight at
once, and pushes the message ids in recipient order. ``load_data`` carries a ``ChatApiNotifier`` as its
failure callback: when it fails (trigger the DAG with ``{"fail": true}`` to see it), the support group
gets the on-call engineer's card.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier
from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator

ON_CALL = "+7 900 111-11-11"
SUPPORT_GROUP = "120363041234567890@g.us"


@dag(
    dag_id="example_chatapi_notify_and_fan_out",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"fail": False},
    tags=["example", "chatapi"],
)
def example_chatapi_notify_and_fan_out() -> None:
    @task
    def subscribers() -> list[str]:
        return [f"+7 900 200-{n // 100:02d}-{n % 100:02d}" for n in range(25)]

    send_to_all = SendContactToManyOperator(
        task_id="send_to_all",
        contact_ids=[ON_CALL],
        recipients=subscribers(),
        max_in_flight=10,
    )

    @task(on_failure_callback=ChatApiNotifier(chat_id=SUPPORT_GROUP, contact_ids=[ON_CALL]))
    def load_data(params: dict[str, bool] | None = None) -> None:
        if params and params["fail"]:
            raise RuntimeError("the nightly load failed")

    send_to_all >> load_data()


example_dag = example_chatapi_notify_and_fan_out()

if __name__ == "__main__":
    example_dag.test()
