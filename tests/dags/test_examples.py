"""The example DAGs, run for real (``dag.test()``, ``airflow dags test``) on a migrated SQLite DB against the
stand-in gateway."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS

from airflow_provider_chatapi.testing import StandInGateway
from tests.helpers import EXAMPLE_DAGS, latest_run_id, load_dag, run_results

pytestmark = pytest.mark.dag
CONTACTS = ["79001111111@c.us", "79002222222@c.us"]
ESCALATION_CHAT = "120363049999999999@g.us"
SUPPORT_GROUP = "120363041234567890@g.us"


def test_example_dags_import_without_errors(airflow_db: Path) -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    # Example (7) is a deadline alert: before Airflow 3.1, which added them, its file defines no DAG.
    # It runs in tests/dags/test_deadline_alerts.py.
    deadline_alert = {"example_chatapi_deadline"} if AIRFLOW_V_3_1_PLUS else set()
    assert set(bag.dag_ids) == {
        "example_chatapi_send_contact",
        "example_chatapi_mapped",
        "example_chatapi_notify_and_fan_out",
        "example_chatapi_1msg_cards",
        "example_chatapi_airflow2_style",
        "example_chatapi_delivery",
        *deadline_alert,
    }


def test_send_contact_example_end_to_end(airflow_db: Path, stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    dag = load_dag("example_chatapi_send_contact")

    run = dag.test()

    assert run.state == "success"
    bodies = {
        request.json.get("quotedMsgId", request.json.get("chatId", "phone")): request.json
        for request in gateway.requests_to("sendContact")
    }
    _, xcom = run_results(dag.dag_id, run.run_id)
    first_id = xcom[("send_via_template", -1)]
    assert len(gateway.requests_to("sendContact")) == 3
    assert bodies == {
        "phone": {"phone": "17472822486", "contactId": CONTACTS},
        "17680561234-1479621234@g.us": {"chatId": "17680561234-1479621234@g.us", "contactId": CONTACTS},
        first_id: {"phone": "17472822486", "contactId": ["79003333333@c.us"], "quotedMsgId": first_id},
    }
    by_chat = {(m.chat_id, m.quoted_message_id): m.id for m in gateway.messages}
    assert first_id == by_chat[("17472822486@c.us", None)]
    assert xcom[("send_via_output", -1)] == by_chat[("17680561234-1479621234@g.us", None)]
    assert xcom[("reply_in_thread", -1)] == by_chat[("17472822486@c.us", first_id)]
    assert xcom[("report", -1)] == [first_id, xcom[("send_via_output", -1)], xcom[("reply_in_thread", -1)]]


def test_mapped_example_sends_once_per_recipient(airflow_db: Path, stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    dag = load_dag("example_chatapi_mapped")

    run = dag.test()

    assert run.state == "success"
    assert sorted(json.dumps(request.json, sort_keys=True) for request in gateway.requests_to("sendContact")) == sorted(
        json.dumps({"phone": phone, "contactId": ["79009999999@c.us"]}, sort_keys=True)
        for phone in ("79001111111", "79002222222", "447911123456")
    )
    _, xcom = run_results(dag.dag_id, run.run_id)
    by_chat = {message.chat_id: message.id for message in gateway.messages}
    mapped = [xcom[("send_to_each", index)] for index in range(3)]
    assert mapped == [by_chat["79001111111@c.us"], by_chat["79002222222@c.us"], by_chat["447911123456@c.us"]]
    assert xcom[("report", -1)] == mapped
    assert dag.get_task("send_to_each").max_active_tis_per_dagrun == 2


def test_1msg_cards_example_end_to_end(airflow_db: Path, stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in("1msg", connection="chatapi_1msg")
    dag = load_dag("example_chatapi_1msg_cards")

    run = dag.test()

    assert run.state == "success"
    ann = {
        "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
        "phones": [{"phone": "+7 900 111-11-11"}],  # no wa_id: no one said this number is on WhatsApp
        "emails": [{"email": "ann@example.com"}],
        "org": {"company": "Acme"},
    }
    bob = {
        "name": {"formatted_name": "Bob Stone", "first_name": "Bob", "last_name": "Stone"},
        "phones": [{"phone": "+44 7911 123456", "type": "WORK", "wa_id": "447911123456"}],
        "urls": [{"url": "https://status.example.com"}],
        "org": {"company": "Acme", "title": "Site reliability"},
    }
    by_number = {
        "name": {"formatted_name": "+7 900 111-11-11", "first_name": "+7 900 111-11-11"},
        "phones": [{"phone": "+7 900 111-11-11", "wa_id": "79001111111"}],  # a contact id is a WhatsApp id
    }
    assert sorted(json.dumps(request.json, sort_keys=True) for request in gateway.requests_to("sendContact")) == sorted(
        json.dumps(body, sort_keys=True)
        for body in (
            {"chatId": "120363041234567890@g.us", "contacts": [ann, bob]},
            {"phone": "17472822486", "contacts": [ann, bob]},
            {"phone": "17472822486", "contacts": [by_number]},
        )
    )
    assert all(request.path == f"/{gateway.instance_id}/sendContact" for request in gateway.requests_to("sendContact"))
    _, xcom = run_results(dag.dag_id, run.run_id)
    by_cards = {(m.chat_id, len(m.contacts)): m.id for m in gateway.messages}
    assert xcom[("send_cards", -1)] == by_cards[("120363041234567890@g.us", 2)]
    assert xcom[("send_cards_from_template", -1)] == by_cards[("17472822486@c.us", 2)]
    assert xcom[("send_by_number", -1)] == by_cards[("17472822486@c.us", 1)]
    assert all(message_id.startswith("wamid.") for message_id in xcom[("report", -1)])
    assert len(xcom[("report", -1)]) == 3


def test_airflow2_style_example_under_airflow_dags_test(
    airflow_db: Path, stand_in: Callable[..., StandInGateway]
) -> None:
    """The DAG of example (5), written the Airflow 2 way, through the real CLI on whichever release runs."""
    token = f"cli-drill-{secrets.token_hex(8)}"
    refusal = "Chat not found: the instance is not in this group"
    gateway = stand_in(token=token, refuse_chats={ESCALATION_CHAT: refusal})
    finished = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "example_chatapi_airflow2_style"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-5000:]

    sends = [request.json.get("chatId", request.json.get("phone")) for request in gateway.requests_to("sendContact")]
    assert sorted(sends) == sorted(["17472822486", "17472822487", "17472822488", ESCALATION_CHAT, SUPPORT_GROUP])
    assert refusal in output  # tried once, although the task has two retries: a refusal is final
    by_chat = {message.chat_id: message for message in gateway.messages}
    assert set(by_chat) == {"17472822486@c.us", "17472822487@c.us", "17472822488@c.us", SUPPORT_GROUP}
    assert by_chat[SUPPORT_GROUP].contact_ids == ("79001111111@c.us",)  # the notifier's card
    assert by_chat["17472822486@c.us"].contact_ids == tuple(CONTACTS)  # templated from XCom

    states, xcom = run_results("example_chatapi_airflow2_style", latest_run_id("example_chatapi_airflow2_style"))
    assert states["send_to_escalation"] == "failed" and states["send_to_lead"] == "success"
    assert xcom[("send_to_lead", -1)] == by_chat["17472822486@c.us"].id
    assert xcom[("send_to_team", -1)] == [by_chat["17472822487@c.us"].id, by_chat["17472822488@c.us"].id]

    leaks = [line for line in output.splitlines() if token in line]
    if not AIRFLOW_V_3_1_PLUS and AIRFLOW_V_3_0_PLUS:
        # Airflow 3.0's `dags test` prints a debug line with every secret it masks, any connection's password
        # included, whatever the provider: what this provider's code writes is checked, not Airflow's own.
        leaks = [line for line in leaks if "Sending request" not in line or "MaskSecret(value=" not in line]
    assert leaks == []


def test_example_fan_out_and_notifier(airflow_db: Path, stand_in: Callable[..., StandInGateway]) -> None:
    gateway = stand_in()
    dag = load_dag("example_chatapi_notify_and_fan_out")

    run = dag.test(run_conf={"fail": True})

    states, xcom = run_results(dag.dag_id, run.run_id)
    assert states == {"subscribers": "success", "send_to_all": "success", "load_data": "failed"}
    by_chat = {message.chat_id: message.id for message in gateway.messages}
    assert xcom[("send_to_all", -1)] == [by_chat[f"7900200{n:04d}@c.us"] for n in range(25)]
    assert "120363041234567890@g.us" in by_chat  # the failure callback's card
    assert len(gateway.messages) == 26
