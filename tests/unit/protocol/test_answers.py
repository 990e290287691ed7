"""What an answer, or its absence, means whatever the dialect: Retry-After, and transport failures that
say whether a message may have been queued."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from airflow_provider_chatapi._protocol.classic import CLASSIC
from airflow_provider_chatapi._protocol.http import connection_failed, parse_retry_after, response_lost
from airflow_provider_chatapi.exceptions import DeliveryUnknownError, GatewayUnavailableError, RateLimitedError
from tests.helpers import classic_request, response


def test_retry_after_in_seconds_and_as_a_date() -> None:
    with pytest.raises(RateLimitedError) as error:
        CLASSIC.parse_send(response(429, {"error": "slow down"}, {"retry-after": "12"}))
    assert error.value.retry_after == 12.0
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, tz=UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_transport_failures_say_whether_the_message_may_be_queued() -> None:
    send = classic_request("79001111111", phone="79002222222")
    assert isinstance(connection_failed(send, "refused"), GatewayUnavailableError)
    assert isinstance(response_lost(send, "read timeout"), DeliveryUnknownError)
    assert isinstance(response_lost(CLASSIC.status_request(), "read timeout"), GatewayUnavailableError)
