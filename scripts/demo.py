"""Run example DAG (1) with ``airflow dags test`` against a stand-in gateway, and show what it sent.

Everything lives in a temporary AIRFLOW_HOME: a fresh SQLite metadata DB, the example DAGs folder,
and a ``chatapi_default`` connection that points at the stand-in on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow_provider_chatapi.testing import StandInGateway

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "example_chatapi_send_contact"


def airflow(*args: str, log: Path) -> None:
    with log.open("a") as output:
        finished = subprocess.run([sys.executable, "-m", "airflow", *args], stdout=output, stderr=subprocess.STDOUT)
    if finished.returncode:
        sys.exit(f"`airflow {' '.join(args)}` failed; its output is in {log}")


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="chatapi-demo-"))
    log = home / "airflow.log"
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    print(f"AIRFLOW_HOME={home}: migrating a fresh SQLite metadata DB …", flush=True)
    airflow("db", "migrate", log=log)
    airflow("dags", "reserialize", log=log)
    with StandInGateway() as gateway:
        os.environ["AIRFLOW_CONN_CHATAPI_DEFAULT"] = gateway.connection_json()
        print(f"Stand-in Chat API gateway at {gateway.api_url}", flush=True)
        print(f"Running `airflow dags test {DAG_ID}` …", flush=True)
        airflow("dags", "test", DAG_ID, log=log)
        messages = gateway.messages
    reported = [line.strip() for line in log.read_text().splitlines() if "Queued message ids:" in line]
    print(f"\nThe gateway queued {len(messages)} contact cards:")
    for message in messages:
        reply = f" (reply to {message.quoted_message_id})" if message.quoted_message_id else ""
        print(f"  {message.id}  to {message.chat_id}: {', '.join(message.contact_ids)}{reply}")
    print("\nThe DAG's report task read these message ids from XCom:")
    print("  " + (reported[-1].split("Queued message ids:", 1)[1].strip() if reported else "(none found)"))
    print(f"\nFull Airflow output: {log}")
    if len(messages) != 3 or not reported:
        sys.exit("The demo did not send what it should have.")


if __name__ == "__main__":
    main()
