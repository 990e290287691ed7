"""One contact card to each of a list of recipients, with dynamic task mapping.

``recipients`` decides at run time who gets the card; ``send_to_each`` maps one task instance per
recipient, at most two in flight at once, and each pushes its own message id to XCom.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

from airflow_provider_chatapi.operators.chatapi import SendContactOperator


@dag(
    dag_id="example_chatapi_mapped",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "chatapi"],
)
def example_chatapi_mapped() -> None:
    @task
    def recipients() -> list[str]:
        return ["+7 900 111-11-11", "79002222222", "+44 7911 123456"]

    sent = SendContactOperator.partial(
        task_id="send_to_each",
        contact_ids=["79009999999"],
        max_active_tis_per_dagrun=2,
    ).expand(phone=recipients())

    @task
    def report(message_ids: list[str]) -> list[str]:
        ids = list(message_ids)
        print("Queued message ids:", ", ".join(ids))
        return ids

    report(sent.output)


example_dag = example_chatapi_mapped()

if __name__ == "__main__":
    example_dag.test()
