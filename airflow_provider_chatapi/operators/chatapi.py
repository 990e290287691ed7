"""Operators that send WhatsApp contact cards through a Chat API gateway."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_chatapi import protocol
from airflow_provider_chatapi.delivery import DeliveryLedger
from airflow_provider_chatapi.protocol import ApiRequest, DeliveryUnknownError, InvalidInputError, NotSentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

DEFAULT_CONN_ID = "chatapi_default"
NO_STATE_STORE = (
    "No task_state_store in the task context (Airflow < 3.3): a later try cannot tell whether this "
    "try's card was queued, so a send whose outcome is unknown fails the task without retrying "
    "(at most once){}."
)


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
    :param timeout: seconds to wait for the gateway; overrides the connection's ``timeout``.
    :param max_retries: HTTP retries of requests the gateway certainly did not process (connect failure,
        429, 503); overrides the connection's ``max_retries``.
    :param at_least_once: when the outcome of a send cannot be established, send again rather than fail:
        a card may then arrive twice, but never zero times. Off by default (at most once).

    The WhatsApp message id (``true_…``) is returned, and so pushed to XCom as ``return_value``. It means
    the gateway queued the message, not that the phone received it.

    Retries never send a card twice. On Airflow 3.3+ the operator records each send in the task
    instance's ``task_state_store``: a retry after a send whose answer was lost asks the gateway whether
    the card arrived and returns its id, sending again only if the gateway shows none. Before 3.3 such a
    send fails the task without retrying. Bad input, a wrong token and a request the gateway rejects
    also fail without retrying; a rate limit or an unavailable gateway leaves the task's retries to act.
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
        timeout: float | None = None,
        max_retries: int | None = None,
        at_least_once: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_ids = contact_ids
        self.phone = phone
        self.chat_id = chat_id
        self.quoted_message_id = quoted_message_id
        self.chatapi_conn_id = chatapi_conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.at_least_once = at_least_once

    @cached_property
    def hook(self) -> ChatApiHook:
        # Imported here: DAG files import this module on every parse, and the hook pulls in requests.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(chatapi_conn_id=self.chatapi_conn_id, timeout=self.timeout, max_retries=self.max_retries)

    def execute(self, context: Context) -> str:
        store = context.get("task_state_store")
        ledger = DeliveryLedger(store) if store is not None else None
        if ledger is None:
            self.log.warning(NO_STATE_STORE.format("; at_least_once lets it retry" if self.at_least_once else ""))
        try:
            send = protocol.build_send_contact(
                self.contact_ids, phone=self.phone, chat_id=self.chat_id, quoted_message_id=self.quoted_message_id
            )
            message_id = self._send_once(send, ledger) if ledger else self._send_now(send)
        except InvalidInputError as error:
            raise AirflowFailException(str(error)) from error
        except DeliveryUnknownError as error:
            if ledger is None and not self.at_least_once:
                raise AirflowFailException(str(error)) from error
            raise  # the next try finds out from the gateway whether the card arrived
        except NotSentError as error:
            if error.transient:
                raise
            raise AirflowFailException(str(error)) from error
        return message_id

    def _send_once(self, send: ApiRequest, ledger: DeliveryLedger) -> str:
        prior = ledger.recorded(send)
        if prior is not None and prior.message_id:
            self.log.info("An earlier try queued this card as %s; not sending it again", prior.message_id)
            return prior.message_id
        if prior is not None:
            found = self._reconcile(send, since=prior.attempted_at)
            if found:
                self.log.info("An earlier try's answer was lost, but the gateway has its card: %s", found)
                ledger.record_sent(prior, found)
                return found
            self.log.warning("An earlier try's answer was lost and the gateway shows no such card; sending again")
        record = ledger.record_intent(send)
        message_id = self._send_now(send)
        ledger.record_sent(record, message_id)
        return message_id

    def _send_now(self, send: ApiRequest) -> str:
        result = self.hook.send(send)
        self.log.info("Chat API queued message %s (%s)", result.id, result.message or "no message")
        return result.id

    def _reconcile(self, send: ApiRequest, *, since: float) -> str | None:
        try:
            return self.hook.find_contact_card(send, since=since)
        except protocol.GatewayError:
            if not self.at_least_once:
                raise  # cannot tell whether the card arrived: leave it to the next try
            self.log.warning("Could not ask the gateway whether the earlier card arrived; at_least_once: sending")
            return None
