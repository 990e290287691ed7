"""The Chat API protocols, with no I/O and no Airflow.

Everything a transport must get right lives here, once: turning what a DAG author passes into what
WhatsApp accepts, building each request, reading each answer, deciding what a failure means for the
message (certainly not queued, or possibly queued), and exchanges of several requests as generator
plans that the hook drives with ``requests`` or ``httpx``.

Two dialects, side by side:

- :mod:`.classic`: the classic chat-api.com protocol (``/instance{ID}/``, contact ids), spoken by
  self-hosted and third-party gateways;
- :mod:`.onemsg`: 1msg, the live service (``/{ID}/``, full contact cards).

What both share: :mod:`.whatsapp` (phone numbers, contact and chat ids), :mod:`.cards` (contact cards),
:mod:`.sends` (a validated send, before any dialect), :mod:`.wire` (requests, answers, plans, failure
classes, secrets), :mod:`.reconcile` (finding our card after a lost answer), :mod:`.connection` (which
dialect and URL a connection means) and :mod:`.errors`. The hook picks the dialect from the connection;
nothing above it knows which one runs.

This package exports what users catch or read: the errors (their tree is in :mod:`.errors`), the
:class:`~.wire.SendResult` a send returns, and the defaults.
"""

from __future__ import annotations

from airflow_provider_chatapi.protocol.errors import (
    AuthenticationError,
    ChatApiError,
    ConnectionConfigError,
    DeliveryUnknownError,
    FanOutError,
    GatewayError,
    GatewayUnavailableError,
    InvalidInputError,
    NotSentError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
)
from airflow_provider_chatapi.protocol.wire import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    SendResult,
)

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "AuthenticationError",
    "ChatApiError",
    "ConnectionConfigError",
    "DeliveryUnknownError",
    "FanOutError",
    "GatewayError",
    "GatewayUnavailableError",
    "InvalidInputError",
    "NotSentError",
    "RateLimitedError",
    "RejectedError",
    "SendResult",
    "WindowClosedError",
]
