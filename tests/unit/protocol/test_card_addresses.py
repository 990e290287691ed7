"""A postal code may arrive as a number from a spreadsheet, but a bool is none: ``True`` is refused, not
sent as ``"True"``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_chatapi._protocol.cards import normalize_contacts
from airflow_provider_chatapi.exceptions import InvalidInputError
from airflow_provider_chatapi.operators.chatapi import SendContactOperator
from airflow_provider_chatapi.testing import StandInGateway


def card(zip_code: object) -> dict[str, object]:
    return {"name": "Ann Lee", "phone": "+7 900 111-11-11", "addresses": [{"city": "Riga", "zip": zip_code}]}


@pytest.fixture
def onemsg(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInGateway]:
    with StandInGateway(dialect="1msg") as gateway:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
        yield gateway


@pytest.mark.parametrize("zip_code", [True, False])
def test_a_bool_zip_is_refused_naming_the_field(zip_code: bool) -> None:
    with pytest.raises(InvalidInputError) as refused:
        normalize_contacts([card(zip_code)])
    assert refused.value.field == "contacts[0].addresses[0].zip"
    assert refused.value.value is zip_code


def test_a_numeric_zip_becomes_text() -> None:
    (normalized,) = normalize_contacts([card(1050)])
    assert normalized["addresses"] == [{"city": "Riga", "zip": "1050"}]


def test_a_bool_zip_fails_the_task_before_any_request(onemsg: StandInGateway) -> None:
    with pytest.raises(AirflowFailException, match=r"contacts\[0\]\.addresses\[0\]\.zip=True"):
        SendContactOperator(task_id="send", contacts=[card(True)], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert onemsg.requests == []
    # The control: the same card with a real postal code reaches this gateway.
    SendContactOperator(task_id="send", contacts=[card("LV-1050")], phone="79002222222").execute({})  # type: ignore[arg-type]
    assert [message.contacts[0]["addresses"] for message in onemsg.messages] == [[{"city": "Riga", "zip": "LV-1050"}]]
