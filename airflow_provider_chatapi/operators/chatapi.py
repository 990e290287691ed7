"""Operators that send WhatsApp contact cards through a Chat API gateway or 1msg."""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_chatapi import DEFAULT_CONN_ID
from airflow_provider_chatapi.delivery import BatchLedger, DeliveryLedger, send_once
from airflow_provider_chatapi.protocol.errors import ChatApiError, DeliveryUnknownError, NotSentError
from airflow_provider_chatapi.protocol.sends import (
    build_send_contact,
    build_send_to_many,
    checked_max_in_flight,
    fan_out_failure,
)
from airflow_provider_chatapi.protocol.wire import DEFAULT_MAX_IN_FLIGHT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_chatapi.delivery import StateStore
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
    from airflow_provider_chatapi.protocol.wire import Plan

SEND_TEMPLATE_FIELDS = ("contact_ids", "contacts", "phone", "chat_id", "quoted_message_id", "chatapi_conn_id")
"""What a single send templates: the operator's and the notifier's arguments alike."""
NO_STATE_STORE = (
    "No task_state_store in the task context (Airflow < 3.3): a later try cannot tell which cards this "
    "try queued, so a send whose outcome is unknown fails the task without retrying (at most once){}."
)


class ChatApiHookMixin:
    """The hook of an operator or notifier, built on first use from its connection id and HTTP policy."""

    chatapi_conn_id: str
    timeout: float | None
    max_retries: int | None

    @cached_property
    def hook(self) -> ChatApiHook:
        # Imported here: DAG files import this module on every parse, and the hook pulls in requests.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(chatapi_conn_id=self.chatapi_conn_id, timeout=self.timeout, max_retries=self.max_retries)


class _ChatApiOperator(ChatApiHookMixin, BaseOperator):
    """What the sending operators share: the hook, the HTTP policy, and mapping failures to task outcomes."""

    def __init__(
        self,
        *,
        chatapi_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | None = None,
        max_retries: int | None = None,
        at_least_once: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chatapi_conn_id = chatapi_conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.at_least_once = at_least_once

    def _state_store(self, context: Context) -> StateStore | None:
        # Airflow 3.3+; not in the Context type of earlier releases.
        store = cast("StateStore | None", context.get("task_state_store"))
        if store is None:
            self.log.warning(NO_STATE_STORE.format("; at_least_once lets it retry" if self.at_least_once else ""))
        return store

    def _may_retry(self, error: BaseException, *, resumable: bool) -> bool:
        """Whether another try can help without sending a card twice (``resumable``: a state store keeps
        what this try sent)."""
        if isinstance(error, DeliveryUnknownError):
            return resumable or self.at_least_once
        return isinstance(error, NotSentError) and error.transient

    def _fail_fast(self, error: ChatApiError, *, resumable: bool) -> None:
        """Fail the task without retries when another try cannot help."""
        if not self._may_retry(error, resumable=resumable):
            raise AirflowFailException(str(error)) from error


class SendContactOperator(_ChatApiOperator):
    """Send one contact card, or a list of them, to a phone number or a chat, in one message.

    Give exactly one of ``contact_ids`` and ``contacts``, and exactly one of ``phone`` and ``chat_id``.
    Every argument is validated after templating and before anything is sent; a bad one fails the task
    at once, naming the argument and its value. The same arguments work with a classic Chat API gateway
    and with 1msg; the connection says which one it is.

    :param contact_ids: the contacts to send by WhatsApp number (templated): a list, tuple or set, a
        single id or an int, an upstream task's output, or a template that renders to a list
        (``"['79001111111', ...]"``), a JSON array or a comma-separated string. A bare phone number
        (``"+7 900 111-11-11"``) becomes ``79001111111@c.us``; duplicates are dropped, keeping the order.
        On 1msg each becomes a card named by the number.
    :param contacts: full contact cards instead (templated): a list of mappings (or one), an upstream
        task's output, or a JSON rendering of them. Short form ``{"name": "Ann Lee", "phone": "+7 900
        111-11-11", "email": "ann@example.com", "org": "Acme"}`` or WhatsApp's full contact object (``name``,
        ``phones``, ``emails``, ``urls``, ``org``, ``addresses``, ``birthday``). 1msg sends the whole card; a
        classic gateway sends each card's WhatsApp number, and the recipient sees WhatsApp's own name for
        it, so there every card needs a phone.
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

    The WhatsApp message id (``true_…`` classic, ``wamid.…`` on 1msg) is returned, and so pushed to XCom as
    ``return_value``. It means the gateway queued the message, not that the phone received it. When 1msg
    takes a send as a queued job it gives no message id yet: the job id is returned instead.

    Retries never send a card twice. On Airflow 3.3+ the operator records each send in the task
    instance's ``task_state_store``: a retry after a send whose answer was lost asks the gateway whether
    the card arrived and returns its id, sending again only if the gateway shows none. Before 3.3 such a
    send fails the task without retrying. Clearing the task sends the card again (after asking the gateway
    about an earlier run's lost answer, if any). Bad input, a wrong token, a request the gateway rejects and a
    send outside WhatsApp's 24-hour window also fail without retrying; a rate limit or an unavailable
    gateway leaves the task's retries to act.
    """

    template_fields: Sequence[str] = SEND_TEMPLATE_FIELDS
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        contact_ids: Any = None,
        contacts: Any = None,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_ids = contact_ids
        self.contacts = contacts
        self.phone = phone
        self.chat_id = chat_id
        self.quoted_message_id = quoted_message_id

    def execute(self, context: Context) -> str:
        store = self._state_store(context)
        try:
            send = build_send_contact(
                self.contact_ids,
                contacts=self.contacts,
                phone=self.phone,
                chat_id=self.chat_id,
                quoted_message_id=self.quoted_message_id,
            )
            ledger = None
            if store is not None:
                ledger = DeliveryLedger(store, first_try=_first_try(context), generation=_generation(context))
            plan = send_once(send, ledger, dialect=self.hook.dialect, at_least_once=self.at_least_once, log=self.log)
            return self.hook.run(plan)
        except ChatApiError as error:
            self._fail_fast(error, resumable=store is not None)
            raise
        finally:
            self.hook.close()


class SendContactToManyOperator(_ChatApiOperator):
    """Send the same contact card to many recipients from one task, concurrently.

    Up to ``max_in_flight`` requests are in flight at once (asynchronously, over one connection pool),
    so 200 recipients take about ``200 / max_in_flight`` round trips rather than 200, without a worker
    slot per recipient. Every argument is validated before the first request.

    :param contact_ids: the contacts to send by number (templated); see :class:`SendContactOperator`.
    :param contacts: full contact cards instead (templated); see :class:`SendContactOperator`.
    :param recipients: phone numbers or chat ids (templated), in any form ``contact_ids`` takes; an item
        with an ``@`` is a chat id. Naming a recipient twice is an error.
    :param quoted_message_id: a message id to reply to (templated); rarely useful across chats.
    :param max_in_flight: how many sends may be in flight at once.
    :param chatapi_conn_id, timeout, max_retries, at_least_once: as for :class:`SendContactOperator`.

    Returns (XCom ``return_value``) the message ids in recipient order.

    Each recipient keeps the no-duplicate guarantee of :class:`SendContactOperator`: on Airflow 3.3+
    every send has its own record in the task state store (written in two calls for the whole batch,
    see :class:`~airflow_provider_chatapi.delivery.BatchLedger`), so a retry skips the recipients
    already served and reconciles those whose answer was lost. Before 3.3 a retry would send to everyone
    again, so a batch in which any card was, or may have been, queued fails without retrying; the ids
    queued are logged. A clear sends every card again, as for :class:`SendContactOperator`.
    """

    template_fields: Sequence[str] = ("contact_ids", "contacts", "recipients", "quoted_message_id", "chatapi_conn_id")
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        recipients: Any,
        contact_ids: Any = None,
        contacts: Any = None,
        quoted_message_id: str | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_ids = contact_ids
        self.contacts = contacts
        self.recipients = recipients
        self.quoted_message_id = quoted_message_id
        self.max_in_flight = checked_max_in_flight(max_in_flight)  # when the DAG is parsed

    def execute(self, context: Context) -> list[str]:
        store = self._state_store(context)
        try:
            return self._send_all(context, store)
        finally:
            self.hook.close()

    async def _fan_out(self, plans: list[Plan[str]]) -> list[str | BaseException]:
        try:
            return await self.hook.arun_many(plans, max_in_flight=self.max_in_flight)
        finally:
            await self.hook.aclose()

    def _send_all(self, context: Context, store: StateStore | None) -> list[str]:
        try:
            sends = build_send_to_many(
                self.contact_ids, self.recipients, contacts=self.contacts, quoted_message_id=self.quoted_message_id
            )
            dialect = self.hook.dialect
            dialect.check(sends)
        except ChatApiError as error:
            self._fail_fast(error, resumable=store is not None)
            raise
        ledger = None
        if store is not None:
            ledger = BatchLedger(store, first_try=_first_try(context), generation=_generation(context))
            ledger.begin(sends)
        plans = [
            send_once(send, ledger, dialect=dialect, at_least_once=self.at_least_once, log=self.log) for send in sends
        ]
        try:
            outcomes = asyncio.run(self._fan_out(plans))
        finally:
            if ledger is not None:
                ledger.flush()
        fan_out = fan_out_failure(outcomes, sends)
        if fan_out is None:
            return outcomes  # type: ignore[return-value]
        for chat, message_id in fan_out.queued.items():
            self.log.info("Queued for %s: %s", chat, message_id)
        # Without a state store a retry sends to every recipient again: never after a card was queued.
        resumable = store is not None
        retry = resumable or not fan_out.queued
        if retry and all(self._may_retry(failure, resumable=resumable) for failure in fan_out.failures.values()):
            raise fan_out
        raise AirflowFailException(str(fan_out)) from fan_out


def _generation(context: Context) -> int:
    """How many times the run was cleared: a clear is the user asking to send again."""
    return int(getattr(context.get("dag_run"), "clear_number", 0) or 0)


def _first_try(context: Context) -> bool:
    """Whether this is the task instance's first try (a cleared instance starts a later one)."""
    ti = context.get("ti")
    return ti is not None and ti.try_number == 1
