"""A send as the protocol builds it: exactly one recipient, and the same request for the same input in
every process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_provider_chatapi.exceptions import InvalidInputError
from tests.helpers import classic_request


@pytest.mark.parametrize(
    ("target", "given"),
    [({}, "neither"), ({"phone": "79001111111", "chat_id": "79001111111@c.us"}, "both")],
)
def test_exactly_one_recipient(target: dict[str, str], given: str) -> None:
    with pytest.raises(InvalidInputError, match=f"give exactly one of them, got {given}") as error:
        classic_request(["79001111111"], **target)
    assert error.value.field == "phone/chat_id"


def test_set_input_gives_the_same_request_in_every_process() -> None:
    script = (
        "from airflow_provider_chatapi._protocol.classic import CLASSIC;"
        "from airflow_provider_chatapi._protocol.sends import build_send_to_many as b;"
        "import json;"
        "sends = b({'79001111111', '79002222222', '79003333333', '447911123456'}, {'17472822486', '4915112345678'});"
        "print(json.dumps([CLASSIC.send_request(s).json for s in sends]))"
    )
    processes = [  # one process per hash seed, all at once
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2", "3", "4")
    ]
    bodies = {process.communicate(timeout=60)[0] for process in processes}
    assert [process.returncode for process in processes] == [0, 0, 0, 0]
    assert len(bodies) == 1
