"""What the operators and the notifier share: their hook, built on first use, and a single send's fields."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

__all__ = ["JOB_IDS_XCOM_KEY", "SEND_TEMPLATE_FIELDS", "LazyHookMixin"]

JOB_IDS_XCOM_KEY = "chatapi_job_ids"
"""Where a sending operator lists which ids it returned are 1msg job ids, so a delivery sensor refuses them."""

SEND_TEMPLATE_FIELDS = (
    "contact_ids",
    "contacts",
    "phone",
    "chat_id",
    "quoted_message_id",
    "default_region",
    "chatapi_conn_id",
)
"""What a single send templates: the operator's and the notifier's arguments alike."""


class LazyHookMixin:
    """The hook of an operator, notifier or sensor, built on first use from its connection id and HTTP policy."""

    chatapi_conn_id: str

    @cached_property
    def hook(self) -> ChatApiHook:
        # Imported here: DAG files import the operators on every parse, and the hook pulls in requests.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(chatapi_conn_id=self.chatapi_conn_id, **self._http_policy())

    def _http_policy(self) -> dict[str, Any]:
        """The ``timeout`` and ``max_retries`` the operators and the notifier take for their requests."""
        return {"timeout": getattr(self, "timeout", None), "max_retries": getattr(self, "max_retries", None)}
