"""Send an account manager's card to new customers, wait until WhatsApp delivers it, and fall back on failure.

``send_card`` sends one card to every customer the upstream task lists (1msg: full contact cards).
``wait_for_delivery`` waits, in the triggerer, until each card is delivered (or read); its XCom maps each
message id to the state it reached. If WhatsApp reports a card failed (say the customer's 24-hour window
was closed), or the deadline passes first, the sensor fails without retrying and ``fall_back_to_email``
runs instead of ``report``.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

from airflow_provider_chatapi.operators.chatapi import SendContactToManyOperator
from airflow_provider_chatapi.sensors.chatapi import ChatApiDeliverySensor

ACCOUNT_MANAGER = {"name": "Ann Lee", "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"}


@dag(
    dag_id="example_chatapi_delivery",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "chatapi"],
)
def example_chatapi_delivery() -> None:
    @task
    def new_customers() -> list[str]:
        return ["+1 747 282 2486", "+1 747 282 2487"]

    send_card = SendContactToManyOperator(
        task_id="send_card", chatapi_conn_id="chatapi_1msg", contacts=[ACCOUNT_MANAGER], recipients=new_customers()
    )
    wait_for_delivery = ChatApiDeliverySensor(
        task_id="wait_for_delivery",
        chatapi_conn_id="chatapi_1msg",
        message_ids=send_card.output,
        wait_for="delivered",
        poke_interval=2,
        timeout=600,
        deferrable=True,
    )

    @task
    def report(states: dict[str, str]) -> None:
        print(f"Every card arrived: {states}")

    @task(trigger_rule="one_failed")
    def fall_back_to_email() -> None:
        print("A card did not arrive: e-mailing the account manager's details instead")

    report(wait_for_delivery.output)
    wait_for_delivery >> fall_back_to_email()


example_dag = example_chatapi_delivery()

if __name__ == "__main__":
    example_dag.test()
