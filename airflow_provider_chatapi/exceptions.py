"""The errors this provider raises: what a DAG or a callback catches. The same for every gateway dialect.

::

    ChatApiError
    ├── InvalidInputError (also ValueError)   a bad argument, raised before any request is sent
    │   └── ConnectionConfigError              the ``chatapi`` connection is unusable
    ├── GatewayError                           the gateway failed or refused; .status_code, .gateway_message
    │   ├── NotSentError                       the gateway certainly queued nothing: sending again is safe
    │   │   ├── AuthenticationError            401/403: the token or the channel is refused (permanent)
    │   │   ├── RejectedError                  ``sent: false``, an ``error`` body, another 4xx (permanent)
    │   │   │   └── WindowClosedError          1msg: outside WhatsApp's 24-hour window (permanent)
    │   │   ├── RateLimitedError               429 (transient); .retry_after, as for 503
    │   │   └── GatewayUnavailableError        503, or no connection could be made (transient)
    │   └── DeliveryUnknownError               the message may have been queued: never resend blindly
    ├── FanOutError                            some sends of a batch failed; .outcomes holds each one's
    ├── DeliveryFailedError                    WhatsApp reported a message failed; .recipient, .reason, .code, .meaning
    └── DeliveryReportUnavailableError         the channel cannot report delivery by message id
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "AuthenticationError",
    "ChatApiError",
    "ConnectionConfigError",
    "DeliveryFailedError",
    "DeliveryReportUnavailableError",
    "DeliveryUnknownError",
    "FanOutError",
    "GatewayError",
    "GatewayUnavailableError",
    "InvalidInputError",
    "NotSentError",
    "RateLimitedError",
    "RejectedError",
    "WindowClosedError",
]


class ChatApiError(Exception):
    """Base of every error this provider raises."""


class InvalidInputError(ChatApiError, ValueError):
    """An argument cannot be sent; raised before any request is made.

    ``field`` names the argument (``contact_ids[2]``, ``contacts[0].phones[1].wa_id``, ...) and ``value``
    is what it held.
    """

    def __init__(self, field: str, value: Any, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={_shown(value)}: {problem}")


class ConnectionConfigError(InvalidInputError):
    """The ``chatapi`` connection is missing a field or holds one the provider cannot use.

    ``setting`` is the connection's field (``host``, ``login``, ``password``, ``extra 'timeout'``).
    """

    def __init__(self, conn_id: str, setting: str, value: Any, problem: str) -> None:
        self.conn_id = conn_id
        self.setting = setting
        super().__init__(f"connection {conn_id!r} {setting}", value, problem)


class GatewayError(ChatApiError):
    """The gateway failed, refused the request, or answered something unreadable.

    ``outcome`` says what this means for the message; a dialect may say it more precisely than the class.
    """

    outcome: str = "the gateway's answer could not be used"

    def __init__(
        self, endpoint: str, gateway_message: str, *, status_code: int | None = None, outcome: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.gateway_message = gateway_message
        self.status_code = status_code
        if outcome is not None:
            self.outcome = outcome
        answer = f"HTTP {status_code}" if status_code is not None else "no HTTP answer"
        super().__init__(f"Chat API {endpoint}: {answer}: {gateway_message} ({self.outcome})")


class NotSentError(GatewayError):
    """The gateway certainly did not queue the message; sending it again cannot duplicate it."""

    outcome = "nothing was queued"
    transient: ClassVar[bool] = False
    """Whether the same request may succeed later; a permanent failure needs a fix, not a retry."""

    def __init__(
        self,
        endpoint: str,
        gateway_message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        outcome: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        """Seconds the gateway asked to wait before trying again (its ``Retry-After``), if it said."""
        super().__init__(endpoint, gateway_message, status_code=status_code, outcome=outcome)


class AuthenticationError(NotSentError):
    """The gateway refused the token, or the channel may not send (HTTP 401 or 403)."""

    outcome = "nothing was queued; check the token in the connection"


class RejectedError(NotSentError):
    """The gateway refused the request itself (``sent: false``, an ``error`` body, or a 4xx)."""

    outcome = "nothing was queued; the gateway rejected the request"


class WindowClosedError(RejectedError):
    """WhatsApp refused a free-form message outside the 24-hour customer-service window (1msg)."""

    outcome = (
        "nothing was queued; the recipient has not written to this number in the last 24 hours, so WhatsApp "
        "accepts only a template message to start the conversation. Retrying cannot help"
    )


class RateLimitedError(NotSentError):
    """HTTP 429; ``retry_after`` holds the seconds the gateway asked to wait, when it said."""

    outcome = "nothing was queued; the gateway is rate limiting"
    transient = True


class GatewayUnavailableError(NotSentError):
    """HTTP 503, or no connection could be made; the request never reached the gateway's queue."""

    outcome = "nothing was queued; the gateway is unavailable"
    transient = True


class DeliveryUnknownError(GatewayError):
    """The request reached the gateway but its answer was lost or unreadable: the message may be queued.

    There is no idempotency key in the protocol, so sending again may deliver the card twice.
    """

    outcome = "the message MAY HAVE BEEN QUEUED; check the chat before sending it again"


class FanOutError(ChatApiError):
    """Some sends of a batch failed. ``outcomes`` holds, in recipient order, each send's result or error;
    ``failures`` and ``queued`` split them by recipient chat (``recipients``, in the same order)."""

    def __init__(self, outcomes: Sequence[Any], recipients: Sequence[str]) -> None:
        self.outcomes = list(outcomes)
        by_chat = dict(zip(recipients, self.outcomes, strict=True))
        self.failures = {chat: outcome for chat, outcome in by_chat.items() if isinstance(outcome, BaseException)}
        self.queued = {chat: outcome for chat, outcome in by_chat.items() if chat not in self.failures}
        shown = _first_few([f"{recipient}: {error}" for recipient, error in self.failures.items()], "; ", listed=3)
        super().__init__(f"{len(self.failures)} of {len(self.outcomes)} sends failed: {shown}")


class DeliveryFailedError(ChatApiError):
    """WhatsApp reported that a queued message failed. Retrying the wait cannot help; sending it again may not
    either (see ``meaning``).

    ``reason`` is what the gateway said, ``code`` Meta's error code where known (from ``errors[]``, or
    recognised in 1msg's text), ``meaning`` what that code means to the sender, and ``recipient`` the chat
    the message went to, as the ack names it (None when it does not).
    """

    def __init__(
        self,
        message_id: str,
        reason: str,
        *,
        code: int | None = None,
        meaning: str | None = None,
        recipient: str | None = None,
    ) -> None:
        self.message_id = message_id
        self.reason = reason
        self.code = code
        self.meaning = meaning
        self.recipient = recipient
        known = f" (code {code}: {meaning})" if code is not None and meaning else f" (code {code})" if code else ""
        to = f" to {recipient}" if recipient else ""
        super().__init__(f"WhatsApp message {message_id}{to} failed: {reason}{known}")


class DeliveryReportUnavailableError(ChatApiError):
    """The channel's API cannot report delivery by message id: 1msg without its Check ACKs endpoint (a 404, or
    an answer without ``hooks``), or a classic gateway, which reports acks only by webhook. Waiting cannot help."""

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        self.detail = detail
        self.status_code = status_code
        answer = f"HTTP {status_code}: " if status_code is not None else ""
        super().__init__(f"Chat API cannot report delivery by message id: {answer}{detail}")


def _first_few(texts: Sequence[str], separator: str = ", ", *, listed: int = 5) -> str:
    """The first few of ``texts``, and how many more there are: what one message names of a long list (the
    protocol's log lines name lost sends and history entries so too)."""
    more = f"{separator}and {len(texts) - listed} more" if len(texts) > listed else ""
    return separator.join(texts[:listed]) + more


_SHOWN = 200  # characters of a bad value an error quotes: a 1 MB argument is not copied into the log


def _shown(value: Any) -> str:
    """``repr(value)``, cut short when long; a value ``repr`` fails on is described instead.

    The value is whatever a DAG passed, so its ``repr`` may fail: an int of more than 4,300 digits (alone
    or in a list), a list nested past Python's stack, an object whose ``__repr__`` raises. The error must
    still be raised, naming the field, rather than that failure.
    """
    try:
        text = repr(value)
    except Exception as error:  # whatever a foreign __repr__ raises is described, never raised
        if isinstance(value, int):
            return f"<an int of about {value.bit_length() * 3 // 10:,} digits>"
        return f"<a {type(value).__name__} that cannot be shown: {type(error).__name__}>"
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 1]}… ({len(text):,} characters)"
