"""Sending a contact card at most once across Airflow task retries.

The gateway has no idempotency key, so a try whose answer was lost cannot know whether its card was
queued. On Airflow 3.3+ each task instance has a ``task_state_store`` that outlives its tries; this
module keeps a small record there: the request about to be sent and when (written *before* the POST),
then the message id the gateway gave it. A later try reads it back:

- an id on record: the card was sent; return the id without sending;
- an intent without an id: ask the gateway (the chat's history, then the outbound queue) for a card
  matching the request since the intent; return its id if found, send again only if not;
- no record, or a record of a different request (the inputs changed): send.

Without a store (Airflow before 3.3) nothing survives a try, so the operator fails the task at once when
the outcome of a send is unknown instead of letting a retry send the card twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_chatapi.protocol import ApiRequest

__all__ = ["DeliveryLedger", "DeliveryRecord", "StateStore"]

LEDGER_KEY = "chatapi_send_contact"


class StateStore(Protocol):
    """What this module needs of Airflow's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class DeliveryRecord:
    """One send as recorded in the store: what was sent, when it was attempted, and its id once known."""

    request: dict[str, Any]
    attempted_at: float
    message_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "attempted_at": self.attempted_at, "message_id": self.message_id}


class DeliveryLedger:
    """The record of one task instance's send, kept in its task state store."""

    def __init__(self, store: StateStore, key: str = LEDGER_KEY) -> None:
        self._store = store
        self._key = key

    def recorded(self, send: ApiRequest) -> DeliveryRecord | None:
        """The record of an earlier try of this very request, if there is one."""
        raw = self._store.get(self._key)
        if not isinstance(raw, dict) or raw.get("request") != _identity(send):
            return None
        message_id = raw.get("message_id")
        return DeliveryRecord(
            request=raw["request"],
            attempted_at=float(raw.get("attempted_at") or 0.0),
            message_id=message_id if isinstance(message_id, str) and message_id else None,
        )

    def record_intent(self, send: ApiRequest) -> DeliveryRecord:
        """Note that this request is about to be sent; call it before the POST."""
        record = DeliveryRecord(request=_identity(send), attempted_at=time.time())
        self._store.set(self._key, record.to_json())
        return record

    def record_sent(self, record: DeliveryRecord, message_id: str) -> None:
        """Note the id the gateway gave the card."""
        self._store.set(self._key, DeliveryRecord(record.request, record.attempted_at, message_id).to_json())


def _identity(send: ApiRequest) -> dict[str, Any]:
    return {"endpoint": send.endpoint, "body": dict(send.json or {})}
