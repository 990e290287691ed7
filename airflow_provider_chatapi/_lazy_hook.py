"""What the operators and the notifier share: their hook, built on first use, and a single send's fields."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

__all__ = ["SEND_TEMPLATE_FIELDS", "LazyHookMixin"]

SEND_TEMPLATE_FIELDS = ("contact_ids", "contacts", "phone", "chat_id", "quoted_message_id", "chatapi_conn_id")
"""What a single send templates: the operator's and the notifier's arguments alike."""


class LazyHookMixin:
    """The hook of an operator or notifier, built on first use from its connection id and HTTP policy."""

    chatapi_conn_id: str
    timeout: float | None
    max_retries: int | None

    @cached_property
    def hook(self) -> ChatApiHook:
        # Imported here: DAG files import the operators on every parse, and the hook pulls in requests.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(chatapi_conn_id=self.chatapi_conn_id, timeout=self.timeout, max_retries=self.max_retries)
