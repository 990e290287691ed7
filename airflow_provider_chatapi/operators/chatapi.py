"""Operators that send WhatsApp contact cards through a Chat API gateway."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_chatapi.protocol import DeliveryUnknownError, InvalidInputError, NotSentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

DEFAULT_CONN_ID = "chatapi_default"


class SendContactOperator(BaseOperator):
    """Send one contact card, or a list of contacts, to a phone number or a chat.

    Give exactly one of ``phone`` and ``chat_id``. Every argument is validated after templating and
    before anything is sent; a bad one fails the task at once, naming the argument and its value.

    :param contact_ids: the contacts to send (templated): a list, tuple or set, a single id or an int, an
        upstream task's output, or a template that renders to a list (``"['79001111111', ...]"``), a
        JSON array or a comma-separated string. A bare phone number (``"+7 900 111-11-11"``) becomes
        ``79001111111@c.us``; duplicates are dropped, keeping the order.
    :param phone: the recipient's phone number with its country code (templated).
    :param chat_id: the recipient chat (templated): ``17633123456@c.us`` for a private chat,
        ``17680561234-1479621234@g.us`` or ``120363…@g.us`` for a group.
    :param quoted_message_id: the id of a message in that chat to reply to (templated).
    :param chatapi_conn_id: the ``chatapi`` connection to send through (templated).

    The WhatsApp message id (``true_…``) is returned, and so pushed to XCom as ``return_value``. It means
    the gateway queued the message, not that the phone received it.

    Failures that another try cannot fix (bad input, a wrong token, a request the gateway rejects, and
    an answer lost after sending, which may have queued the message) fail the task without retrying.
    A rate limit or an unavailable gateway raises normally, so the task's retries apply.
    """

    template_fields: Sequence[str] = ("contact_ids", "phone", "chat_id", "quoted_message_id", "chatapi_conn_id")
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        contact_ids: Any,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
        chatapi_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_ids = contact_ids
        self.phone = phone
        self.chat_id = chat_id
        self.quoted_message_id = quoted_message_id
        self.chatapi_conn_id = chatapi_conn_id

    @cached_property
    def hook(self) -> ChatApiHook:
        # Imported here: DAG files import this module on every parse, and the hook pulls in requests.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(chatapi_conn_id=self.chatapi_conn_id)

    def execute(self, context: Context) -> str:
        try:
            result = self.hook.send_contact(
                self.contact_ids,
                phone=self.phone,
                chat_id=self.chat_id,
                quoted_message_id=self.quoted_message_id,
            )
        except (InvalidInputError, DeliveryUnknownError) as error:
            raise AirflowFailException(str(error)) from error
        except NotSentError as error:
            if error.transient:
                raise
            raise AirflowFailException(str(error)) from error
        self.log.info("Chat API queued message %s (%s)", result.id, result.message or "no message")
        return result.id
