"""The failures the stand-in can be told to answer with, as :class:`Fault` values."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Fault"]


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of the normal answer.

    With no ``status`` the request is handled normally (and so queued when valid) and answered
    ``delay`` seconds later; a success (a 2xx JSON object that does not say ``sent: false``) then carries
    ``fields`` too, and ``ok_status`` instead of its own status if set. With a ``status`` the gateway
    answers that status, ``body`` and ``headers`` instead, and queues the message anyway only if
    ``queue`` is set: a 500 that hid a queued message.
    ``reset`` drops the connection without any answer, after queueing the message if ``queue`` is set.
    """

    status: int | None = None
    body: bytes | str | Mapping[str, Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    queue: bool = False
    reset: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)
    ok_status: int | None = None

    def decorate(self, status: int, body: Any) -> tuple[int, Any]:
        """The normal answer ``status`` and ``body`` as this fault changes it: a success (a 2xx JSON object
        that does not say ``sent: false``) gets :attr:`fields` and :attr:`ok_status`; any other answer is
        left as it is."""
        success = 200 <= status < 300 and isinstance(body, dict) and body.get("sent") is not False
        if self.status is not None or not success:
            return status, body
        return (status if self.ok_status is None else self.ok_status), {**body, **self.fields}

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Queue the message at once and answer normally ``delay`` seconds later (past a short client timeout)."""
        return cls(delay=delay)

    @classmethod
    def decorated(cls, fields: Mapping[str, Any] | None = None, *, status: int | None = None) -> Fault:
        """Handle the request normally, and answer a success with ``fields`` added (``{"error": None}`` makes
        ``{"sent": true, "id": …, "error": null}``) and with ``status`` (a 201, say) if given: an odd answer
        that still means the card was queued. A refusal or an error is answered as it is."""
        return cls(fields=dict(fields or {}), ok_status=status)

    @classmethod
    def reset_after_queueing(cls) -> Fault:
        """Queue the message, then drop the connection without answering."""
        return cls(status=0, queue=True, reset=True)

    @classmethod
    def reset_before_queueing(cls) -> Fault:
        """Drop the connection without answering and without queueing anything."""
        return cls(status=0, reset=True)

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(status=429, body={"error": "Too many requests, slow down"}, headers=headers)

    @classmethod
    def unavailable(cls, retry_after: float | None = None) -> Fault:
        headers = {"Content-Type": "text/html"} | ({} if retry_after is None else {"Retry-After": str(retry_after)})
        return cls(
            status=503, body="<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", headers=headers
        )

    @classmethod
    def server_error(cls, status: int = 500, *, queued: bool = True) -> Fault:
        """A 5xx answer; by default the message was queued before the gateway failed."""
        return cls(status=status, body={"error": "Internal server error"}, queue=queued)

    @classmethod
    def bad_gateway_page(cls, *, queued: bool = True) -> Fault:
        """A proxy's HTML 502 page in front of a gateway that may have queued the message."""
        page = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
        return cls(status=502, body=page, headers={"Content-Type": "text/html"}, queue=queued)

    @classmethod
    def garbage(cls, body: bytes | str = b"\x00not json", *, status: int = 200, queued: bool = True) -> Fault:
        return cls(status=status, body=body, headers={"Content-Type": "application/octet-stream"}, queue=queued)

    @classmethod
    def rejected(cls, message: str = "Wrong chatId format. Please use 17633123456@c.us") -> Fault:
        return cls(status=200, body={"sent": False, "message": message})

    @classmethod
    def window_closed(cls) -> Fault:
        """1msg's refusal of a free-form message outside WhatsApp's 24-hour customer-service window."""
        text = "Dialog window is closed. The recipient has to write first (24-hour window); use a template message"
        return cls(status=400, body={"error": text})

    @classmethod
    def forbidden_text(cls, text: str = "Channel is in trial mode or blocked") -> Fault:
        """1msg's plain-text 403 for a trial or blocked channel."""
        return cls(status=403, body=text, headers={"Content-Type": "text/plain"})

    @classmethod
    def queued_as_job(cls) -> Fault:
        """1msg took the send as a queued job: the card is queued, but the answer says ``sent: false``."""
        body = {
            "sent": False,
            "jobId": f"job_{secrets.token_hex(6)}",
            "message": "Request accepted and queued as a job",
        }
        return cls(status=200, body=body, queue=True)

    @classmethod
    def redirect(cls, location: str = "/elsewhere", status: int = 307) -> Fault:
        """A redirect (a moved gateway, a proxy): nothing is queued."""
        return cls(status=status, headers={"Location": location})
