"""One request to the gateway and what came back, as plain values: no I/O, no token in the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_chatapi._protocol.secrets import scrub_secret

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ApiRequest", "ApiResponse", "read_response"]


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One call to the gateway, without the token: the transport adds ``?token=`` itself."""

    method: Literal["GET", "POST"]
    endpoint: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None

    @property
    def has_side_effect(self) -> bool:
        """Whether a lost answer leaves the gateway's state unknown (a POST may have queued a message)."""
        return self.method == "POST"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """What the transport read: status, headers that answer to lower-case names, and the body as it came.

    Gateways echo the token in their error texts (1msg's 401 always does), so whatever is taken from an
    answer to be shown (an error, a log line, a result) goes through :meth:`shown`, which scrubs it.
    """

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    secret: str = field(default="", repr=False)

    def shown(self, text: str) -> str:
        """``text`` from this answer, fit to show: the token scrubbed."""
        return scrub_secret(text, self.secret)


def read_response(status_code: int, headers: Mapping[str, str], body: bytes, *, secret: str) -> ApiResponse:
    """Wrap what a transport read, with the secret that :meth:`ApiResponse.shown` keeps out of sight."""
    if type(headers) is dict:  # requests' and httpx's headers already answer to any case
        headers = {name.lower(): value for name, value in headers.items()}
    return ApiResponse(status_code=status_code, headers=headers, body=body, secret=secret)
