"""Where and how to reach one instance, as read from a ``chatapi`` connection."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_chatapi._protocol.dialect import Dialect
    from airflow_provider_chatapi._protocol.http import ApiRequest

__all__ = ["DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT", "GatewaySettings"]

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the gateway to connect and, separately, to answer."""
DEFAULT_MAX_RETRIES = 3
"""Retries of a request the gateway certainly did not process (connect failure, 429, 503)."""


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Where and how to reach one instance. The token is left out of ``repr()``."""

    api_url: str
    token: str = field(repr=False)
    dialect: Dialect
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    default_region: str | None = None
    """Where a number written the national way is read (an ISO country code); None: nowhere."""

    def replace(self, **changes: Any) -> GatewaySettings:
        """A copy with some settings changed (a hook's own timeout, say)."""
        return dataclasses.replace(self, **changes)

    def url(self, endpoint: str) -> str:
        """The endpoint's URL without the token; safe to log."""
        return f"{self.api_url}/{endpoint}"

    def http_arguments(self, request: ApiRequest) -> dict[str, Any]:
        """What an HTTP client (``requests`` or ``httpx``) needs to make ``request``, token included."""
        return {
            "method": request.method,
            "url": self.url(request.endpoint),
            "params": {**request.params, "token": self.token},
            "json": request.json,
        }
