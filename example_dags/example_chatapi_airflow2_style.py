"""(5) The provider from a DAG written the Airflow 2 way, which runs unchanged on Airflow 2.11 and 3.x.

``on_call`` returns the contacts to share. ``send_to_lead`` templates them from XCom (``ti.xcom_pull``);
``send_to_team`` fans the same cards out to two recipients from one task. ``send_to_escalation`` goes to
a chat the gateway refuses: the refusal fails the task at once (no retry, although it has two), and its
``ChatApiNotifier`` failure callback sends the on-call engineer's card to the support group instead.
``report`` runs whatever happened upstream and logs the message ids it finds in XCom.

``scripts/demo`` runs it against a stand-in gateway that refuses the escalation chat.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import task

from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator

ON_CALL = "+7 900 111-11-11"
SUPPORT_GROUP = "120363041234567890@g.us"
ESCALATION_CHAT = "120363049999999999@g.us"
"""A group the stand-in in ``scripts/demo`` refuses to send to, as a gateway does once the instance left it."""

with DAG(
    dag_id="example_chatapi_airflow2_style",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
    tags=["example", "chatapi"],
) as example_dag:

    @task
    def on_call() -> list[str]:
        return [ON_CALL, "+7 900 222-22-22"]

    contacts = on_call()

    send_to_lead = SendContactOperator(
        task_id="send_to_lead",
        phone="+1 (747) 282-2486",
        contact_ids="{{ ti.xcom_pull(task_ids='on_call') }}",
    )
    send_to_team = SendContactToManyOperator(
        task_id="send_to_team",
        recipients=["+1 (747) 282-2487", "+1 (747) 282-2488"],
        contact_ids=contacts,
    )
    send_to_escalation = SendContactOperator(
        task_id="send_to_escalation",
        chat_id=ESCALATION_CHAT,
        contact_ids=contacts,
        on_failure_callback=ChatApiNotifier(chat_id=SUPPORT_GROUP, contact_ids=[ON_CALL]),
    )

    @task(trigger_rule="all_done")
    def report(ti=None) -> None:  # type: ignore[no-untyped-def]
        sent = ti.xcom_pull(task_ids=["send_to_lead", "send_to_team", "send_to_escalation"])
        print(f"Queued message ids: {list(sent)}")

    contacts >> [send_to_lead, send_to_team, send_to_escalation] >> report()

if __name__ == "__main__":
    example_dag.test()
