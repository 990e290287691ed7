"""Send the on-call engineer's contact card, picked by an upstream task, two ways.

``pick_on_call`` returns a recipient and the contacts to share. ``send_via_template`` reads them
through Jinja templates: the list arrives as a string such as ``"['+7 900 111-11-11', ...]"``, which
the operator parses. ``send_via_output`` takes the task's output directly and gets the real list.
``reply_in_thread`` quotes the first message by the id it pushed to XCom, and ``report`` reads every
message id from XCom.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

from airflow_provider_chatapi.operators.chatapi import SendContactOperator


@dag(
    dag_id="example_chatapi_send_contact",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "chatapi"],
)
def example_chatapi_send_contact() -> None:
    @task(multiple_outputs=True)
    def pick_on_call() -> dict[str, object]:
        return {
            "recipient": "+1 (747) 282-2486",
            "group": "17680561234-1479621234@g.us",
            "contacts": ["+7 900 111-11-11", "79002222222@c.us", "+7 900 111-11-11"],
        }

    picked = pick_on_call()

    send_via_template = SendContactOperator(
        task_id="send_via_template",
        phone="{{ ti.xcom_pull(task_ids='pick_on_call', key='recipient') }}",
        contact_ids="{{ ti.xcom_pull(task_ids='pick_on_call', key='contacts') }}",
    )
    send_via_output = SendContactOperator(
        task_id="send_via_output",
        chat_id=picked["group"],
        contact_ids=picked["contacts"],
    )
    reply_in_thread = SendContactOperator(
        task_id="reply_in_thread",
        phone="{{ ti.xcom_pull(task_ids='pick_on_call', key='recipient') }}",
        contact_ids="79003333333",
        quoted_message_id="{{ ti.xcom_pull(task_ids='send_via_template') }}",
    )

    @task
    def report(first: str, second: str, reply: str) -> list[str]:
        message_ids = [first, second, reply]
        print("Queued message ids:", ", ".join(message_ids))
        return message_ids

    picked >> send_via_template >> reply_in_thread
    report(send_via_template.output, send_via_output.output, reply_in_thread.output)


example_dag = example_chatapi_send_contact()

if __name__ == "__main__":
    example_dag.test()
