"""Run three example DAGs with ``airflow dags test`` against stand-in gateways, and show what they sent.

Everything lives in a temporary AIRFLOW_HOME: a fresh SQLite metadata DB and the example DAGs folder.
Example (1) sends contact ids through a classic Chat API gateway (``chatapi_default``); example (4) sends
full contact cards through 1msg (``chatapi_1msg``); example (5), written the Airflow 2 way, fans out and
meets a refused chat, whose failure callback alerts a support group. The stand-ins listen on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow_provider_chatapi.testing import QueuedMessage, StandInGateway

ROOT = Path(__file__).resolve().parent.parent
REFUSED = {"120363049999999999@g.us": "Chat not found: the instance is not in this group"}
RUNS = [  # DAG id, the connection it uses, the stand-in's dialect, chats it refuses, the cards it must queue
    ("example_chatapi_send_contact", "CHATAPI_DEFAULT", "chatapi", {}, 3),
    ("example_chatapi_1msg_cards", "CHATAPI_1MSG", "1msg", {}, 3),
    ("example_chatapi_airflow2_style", "CHATAPI_DEFAULT", "chatapi", REFUSED, 4),
]


def airflow(*args: str, log: Path) -> None:
    with log.open("a") as output:
        finished = subprocess.run([sys.executable, "-m", "airflow", *args], stdout=output, stderr=subprocess.STDOUT)
    if finished.returncode:
        sys.exit(f"`airflow {' '.join(args)}` failed; its output is in {log}")


def describe(message: QueuedMessage) -> str:
    if message.contacts:
        cards = ", ".join(f"{card['name']['formatted_name']} card" for card in message.contacts)
    else:
        cards = ", ".join(message.contact_ids)
    reply = f" (reply to {message.quoted_message_id})" if message.quoted_message_id else ""
    return f"  {message.id}  to {message.chat_id}: {cards}{reply}"


def run(dag_id: str, conn: str, dialect: str, refused: dict[str, str], log: Path) -> tuple[list[QueuedMessage], str]:
    with StandInGateway(dialect=dialect, refuse_chats=refused) as gateway:
        os.environ[f"AIRFLOW_CONN_{conn}"] = gateway.connection_json()
        refusing = f", refusing {', '.join(refused)}" if refused else ""
        print(f"\nStand-in gateway speaking {dialect} at {gateway.api_url}{refusing}", flush=True)
        print(f"Running `airflow dags test {dag_id}` …", flush=True)
        start = log.stat().st_size
        airflow("dags", "test", dag_id, log=log)
        messages = gateway.messages
        for chat_id, refusal in refused.items():
            tries = sum(request.json.get("chatId") == chat_id for request in gateway.requests_to("sendContact"))
            print(f"The gateway refused {tries} send(s) to {chat_id}: {refusal!r}")
    output = log.read_text()[start:]
    reported = [line for line in output.splitlines() if "Queued message ids:" in line]
    return messages, reported[-1].split("Queued message ids:", 1)[1].strip() if reported else ""


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="chatapi-demo-"))
    log = home / "airflow.log"
    log.touch()
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    print(f"AIRFLOW_HOME={home}: migrating a fresh SQLite metadata DB …", flush=True)
    airflow("db", "migrate", log=log)
    airflow("dags", "reserialize", log=log)
    failed = []
    for dag_id, conn, dialect, refused, expected in RUNS:
        messages, reported = run(dag_id, conn, dialect, refused, log)
        print(f"The gateway queued {len(messages)} messages of contact cards:")
        print("\n".join(describe(message) for message in messages))
        print("The DAG's report task read these message ids from XCom:")
        print(f"  {reported or '(none found)'}")
        if len(messages) != expected or not reported:
            failed.append(dag_id)
    print(f"\nFull Airflow output: {log}")
    if failed:
        sys.exit(f"The demo did not send what it should have: {', '.join(failed)}")


if __name__ == "__main__":
    main()
