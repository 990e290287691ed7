"""Every failure the gateway shows, through one ChatApiHook call on each transport: the fault table's hook side
(``tests/scenarios.py``; its task side is ``tests/dags/test_faults.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.testing import StandInGateway
from tests.scenarios import CASES, Outcome, Scenario


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize(("dialect", "scenario"), CASES)
def test_hook(
    stand_in: Callable[..., StandInGateway],
    quick_retries: list[float],
    dialect: str,
    scenario: Scenario,
    transport: str,
) -> None:
    gateway = stand_in(dialect)
    gateway.inject(*scenario.faults)
    hook = ChatApiHook(timeout=0.5, max_retries=2)
    arguments = {"contact_ids": ["79001111111"], "phone": "79002222222"}
    try:
        if transport == "sync":
            hook.send_contact(**arguments)
        else:
            asyncio.run(hook.asend_contact(**arguments))
        state = "success"
    except Exception as error:
        state = type(error).__name__
        assert scenario.says in str(error)
        assert gateway.token not in str(error)
    outcome = Outcome(state, len(gateway.messages), len(gateway.requests_to("sendContact")))
    assert outcome == scenario.hook
