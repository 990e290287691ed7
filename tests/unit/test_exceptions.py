"""The error tree: which refusals are transient, and that a possible delivery is never a "not sent"."""

from __future__ import annotations

from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    DeliveryUnknownError,
    GatewayUnavailableError,
    NotSentError,
    RateLimitedError,
    RejectedError,
)


def test_transient_and_permanent_refusals() -> None:
    assert RateLimitedError.transient and GatewayUnavailableError.transient
    assert not AuthenticationError.transient and not RejectedError.transient
    assert not issubclass(DeliveryUnknownError, NotSentError)
