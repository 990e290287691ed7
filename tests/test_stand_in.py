"""The stand-in gateway's 1msg dialect, over plain HTTP: its checks, answers, history and faults.

Its checks are written apart from the provider's protocol code, so they are tested here on their own,
and a property test holds the two to each other: every request the provider builds, the stand-in takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_chatapi._stand_in_checks import check_onemsg_send
from airflow_provider_chatapi.protocol.onemsg import ONEMSG
from airflow_provider_chatapi.protocol.sends import build_send_contact
from airflow_provider_chatapi.testing import Fault, StandInGateway

CARD = {"name": {"formatted_name": "Ann Lee", "first_name": "Ann"}, "phones": [{"wa_id": "79001111111"}]}


@pytest.fixture
def onemsg() -> Iterator[StandInGateway]:
    with StandInGateway(dialect="1msg") as gateway:
        yield gateway


def post(gateway: StandInGateway, body: Any, path: str = "sendContact", token: str | None = None) -> requests.Response:
    return requests.post(f"{gateway.api_url}/{path}", params={"token": token or gateway.token}, json=body, timeout=5)


def test_a_card_is_queued_with_a_wamid(onemsg: StandInGateway) -> None:
    answer = post(onemsg, {"phone": "17472822486", "contacts": [CARD]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["sent"] is True and body["id"].startswith("wamid.") and body["message"] == "Sent to 17472822486@c.us"
    (message,) = onemsg.messages
    assert (message.id, message.chat_id, message.contacts, message.contact_ids) == (
        body["id"],
        "17472822486@c.us",
        (CARD,),
        ("79001111111@c.us",),
    )


BAD_BODIES = [
    ({"phone": 17472822486, "contacts": [CARD]}, "phone must be a string"),
    ({"phone": "17472822486", "contactId": ["79001111111@c.us"]}, "contactId is not a field"),
    ({"contacts": [CARD]}, "exactly one of phone or chatId"),
    ({"chatId": "abc", "contacts": [CARD]}, "chatId: wrong format"),
    ({"phone": "17472822486", "contacts": []}, "contacts is required"),
    ({"phone": "17472822486", "contacts": [{"phones": [{"wa_id": "79001111111"}]}]}, "contacts[0].name is required"),
    ({"phone": "17472822486", "contacts": [{"name": {"first_name": "Ann"}}]}, "name.formatted_name is required"),
    ({"phone": "17472822486", "contacts": [{"name": {"formatted_name": "Ann"}}]}, "contacts[0].name needs one of"),
    ({"phone": "17472822486", "contacts": [{**CARD, "nick": "A"}]}, "contacts[0].nick is not a contact field"),
    ({"phone": "17472822486", "contacts": [{**CARD, "phones": [{"wa_id": "+7 900"}]}]}, "phones[0].wa_id must be"),
    ({"phone": "17472822486", "contacts": [{**CARD, "phones": [{"type": "CELL"}]}]}, "phones[0] needs phone or wa_id"),
    ({"phone": "17472822486", "contacts": [{**CARD, "phones": [{"phone": "1", "type": "FAX"}]}]}, "phones[0].type"),
    ({"phone": "17472822486", "contacts": [{**CARD, "emails": [{"email": "ann"}]}]}, "emails[0].email must be"),
    ({"phone": "17472822486", "contacts": [{**CARD, "org": {"name": "Acme"}}]}, "contacts[0].org must be"),
    ({"phone": "17472822486", "contacts": [{**CARD, "birthday": "1990-02-30"}]}, "contacts[0].birthday must be"),
    ({"phone": "17472822486", "contacts": [{**CARD, "addresses": [{"city": 5}]}]}, "addresses[0] values must be"),
    ({"phone": "17472822486", "contacts": [CARD], "quotedMsgId": None}, "must not be null: quotedMsgId"),
]


@pytest.mark.parametrize(("body", "problem"), BAD_BODIES, ids=[problem for _, problem in BAD_BODIES])
def test_1msgs_checks(onemsg: StandInGateway, body: dict[str, Any], problem: str) -> None:
    answer = post(onemsg, body)
    assert answer.status_code == 400
    assert problem in answer.json()["error"]
    assert onemsg.messages == []


def test_addressing_and_token(onemsg: StandInGateway) -> None:
    classic_path = requests.post(
        f"{onemsg.base_url}/instance{onemsg.instance_id}/sendContact",
        params={"token": onemsg.token},
        json={},
        timeout=5,
    )
    assert classic_path.status_code == 404
    assert post(onemsg, {}, path="showMessagesQueue").status_code == 404  # 1msg lists no queue
    wrong = post(onemsg, {"phone": "17472822486", "contacts": [CARD]}, token="not-the-token")
    assert wrong.status_code == 401 and "not-the-token" not in wrong.text
    assert json.loads(onemsg.connection_json())["extra"] == {"dialect": "1msg"}


def test_status_history_and_notice(onemsg: StandInGateway) -> None:
    post(
        onemsg,
        {"chatId": "120363041234567890@g.us", "contacts": [CARD, {**CARD, "phones": [{"wa_id": "447911123456"}]}]},
    )
    status = requests.get(f"{onemsg.api_url}/status", params={"token": onemsg.token}, timeout=5).json()
    assert status == {"status": "connected"}
    query = {"token": onemsg.token, "chatId": "120363041234567890@g.us", "min_time": "0"}
    (entry,) = requests.get(f"{onemsg.api_url}/messages", params=query, timeout=5).json()["messages"]
    assert entry["fromMe"] is True and entry["type"] == "contacts" and entry["chatId"] == "120363041234567890@g.us"
    assert entry["body"].count("BEGIN:VCARD") == 2 and "waid=447911123456" in entry["body"]
    later = requests.get(f"{onemsg.api_url}/messages", params={**query, "min_time": str(entry["time"] + 1)}, timeout=5)
    assert later.json()["messages"] == []
    with StandInGateway(dialect="1msg", history=False) as no_history:
        answer = requests.get(f"{no_history.api_url}/messages", params={"token": no_history.token}, timeout=5).json()
        assert "notice" in answer and "messages" not in answer


def test_1msg_faults(onemsg: StandInGateway) -> None:
    body = {"phone": "17472822486", "contacts": [CARD]}
    onemsg.inject(Fault.window_closed(), Fault.forbidden_text("Trial channel"), Fault.queued_as_job(), Fault.redirect())
    window = post(onemsg, body)
    assert window.status_code == 400 and "Dialog window is closed" in window.json()["error"]
    forbidden = post(onemsg, body)
    assert (forbidden.status_code, forbidden.headers["content-type"], forbidden.text) == (
        403,
        "text/plain",
        "Trial channel",
    )
    job = post(onemsg, body).json()
    assert job["sent"] is False and job["jobId"].startswith("job_")
    moved = requests.post(
        f"{onemsg.api_url}/sendContact", params={"token": onemsg.token}, json=body, timeout=5, allow_redirects=False
    )
    assert (moved.status_code, moved.headers["location"]) == (307, "/elsewhere")
    assert len(onemsg.messages) == 1  # only the job queued a card


def test_errors_inside_the_stand_in_are_recorded(onemsg: StandInGateway, capfd: pytest.CaptureFixture[str]) -> None:
    onemsg.inject(Fault(status=200, body={"not serialisable": {1, 2}}))  # type: ignore[dict-item]
    with pytest.raises(requests.ConnectionError):
        post(onemsg, {"phone": "17472822486", "contacts": [CARD]})
    assert len(onemsg.errors) == 1 and "TypeError" in onemsg.errors[0]
    assert "TypeError" in capfd.readouterr().err
    onemsg.inject(Fault.reset_before_queueing())  # a connection the stand-in drops on purpose is no error
    with pytest.raises(requests.ConnectionError):
        post(onemsg, {"phone": "17472822486", "contacts": [CARD]})
    assert len(onemsg.errors) == 1


cards = st.fixed_dictionaries(
    {"name": st.sampled_from(["Ann Lee", "Cher", "  Bob  Stone ", "Ана Ли"])},
    optional={
        "phone": st.sampled_from(["+7 900 111-11-11", "447911123456", 4915112345678]),
        "email": st.sampled_from(["ann@example.com", {"email": "b@example.org", "type": "home"}]),
        "org": st.sampled_from(["Acme", {"company": "Acme", "title": "SRE"}]),
        "urls": st.just(["https://example.com/a"]),
        "birthday": st.sampled_from(["1990-02-28", "2000-01-01"]),
        "addresses": st.just([{"city": "Berlin", "zip": 10115, "type": "WORK"}]),
    },
)


@settings(max_examples=150)
@given(
    st.lists(cards, min_size=1, max_size=4),
    st.sampled_from([{"phone": "17472822486"}, {"chat_id": "120363041234567890@g.us"}]),
)
def test_every_1msg_request_we_build_is_one_the_stand_in_accepts(
    contacts: list[dict[str, Any]], target: dict[str, str]
) -> None:
    request = ONEMSG.send_request(build_send_contact(contacts=contacts, **target))
    problem, _, queued = check_onemsg_send(json.loads(json.dumps(request.json)))
    assert problem is None
    assert list(queued) == request.json["contacts"]  # type: ignore[index]
