"""Send full contact cards through 1msg, the live Chat API service, from an upstream task's output.

``on_call_roster`` returns today's on-call people as contact cards, the way a task reading an HR system
or a spreadsheet would: the short form (``name``, ``phone``, ``email``, ``org``) and WhatsApp's full
contact object both work. ``send_cards`` takes the list directly; ``send_cards_from_template`` gets it
through Jinja as JSON; ``send_by_number`` sends a bare number, which 1msg shows as a card named by the
number. Every send pushes 1msg's message id (``wamid.…``) to XCom, and ``report`` reads them.

The ``chatapi_1msg`` connection: API URL ``https://api.1msg.io/<instance id>``, API token the channel's
token; a host on 1msg.io needs no dialect set.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

from airflow_provider_chatapi.operators.chatapi import SendContactOperator

CONN_ID = "chatapi_1msg"


@dag(
    dag_id="example_chatapi_1msg_cards",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "chatapi", "1msg"],
)
def example_chatapi_1msg_cards() -> None:
    @task
    def on_call_roster() -> list[dict[str, object]]:
        return [
            {"name": "Ann Lee", "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"},
            {
                "name": {"formatted_name": "Bob Stone", "first_name": "Bob", "last_name": "Stone"},
                "phones": [{"phone": "+44 7911 123456", "type": "WORK", "wa_id": "447911123456"}],
                "org": {"company": "Acme", "title": "Site reliability"},
                "urls": ["https://status.example.com"],
            },
        ]

    roster = on_call_roster()

    send_cards = SendContactOperator(
        task_id="send_cards",
        chatapi_conn_id=CONN_ID,
        chat_id="120363041234567890@g.us",
        contacts=roster,
    )
    send_cards_from_template = SendContactOperator(
        task_id="send_cards_from_template",
        chatapi_conn_id=CONN_ID,
        phone="+1 (747) 282-2486",
        contacts="{{ ti.xcom_pull(task_ids='on_call_roster') | tojson }}",
    )
    send_by_number = SendContactOperator(
        task_id="send_by_number",
        chatapi_conn_id=CONN_ID,
        phone="+1 (747) 282-2486",
        contact_ids=["+7 900 111-11-11"],
    )

    @task
    def report(*message_ids: str) -> list[str]:
        print("Queued message ids:", ", ".join(message_ids))
        return list(message_ids)

    roster >> send_cards_from_template
    report(send_cards.output, send_cards_from_template.output, send_by_number.output)


example_dag = example_chatapi_1msg_cards()

if __name__ == "__main__":
    example_dag.test()
