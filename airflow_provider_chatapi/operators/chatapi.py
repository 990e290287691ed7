"""Operators that send WhatsApp contact cards through a Chat API gateway or 1msg."""

from __future__ import annotations

import asyncio
import math
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_chatapi import DEFAULT_CONN_ID, JOB_IDS_XCOM_KEY, SEND_FIELDS
from airflow_provider_chatapi._protocol.reconcile import Intent
from airflow_provider_chatapi._protocol.record import Ledger
from airflow_provider_chatapi._protocol.sends import (
    DEFAULT_MAX_IN_FLIGHT,
    checked_flag,
    checked_max_in_flight,
    checked_max_per_second,
    checked_max_retries,
    checked_timeout,
)
from airflow_provider_chatapi.exceptions import ChatApiError, DeliveryUnknownError, FanOutError, NotSentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_chatapi._protocol.record import StateStore
    from airflow_provider_chatapi._protocol.sends import SendResult
    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

__all__ = ["SendContactOperator", "SendContactToManyOperator"]

_IDS_PER_LINE = 50  # a failed fan-out's queued ids, logged many to a line: 2,000 cards make 40 lines
_NO_STATE_STORE = (
    "No task_state_store in the task context (Airflow < 3.3): a send whose outcome is unknown fails the task "
    "without retrying (at most once){}, and a retry first asks the gateway what earlier tries queued."
)
_RETRY_WITHOUT_RECORD = (
    "Try %d of this task instance follows an earlier try whose cards nothing records (Airflow < 3.3; it may "
    "have been killed): every recipient's card is looked for in the gateway's history since %s first."
)


class _ChatApiOperator(BaseOperator):
    """What the sending operators share: the hook, the HTTP policy, the ledger, and failures as task outcomes."""

    ui_color = "#25d366"

    def __init__(
        self,
        *,
        chatapi_conn_id: str = DEFAULT_CONN_ID,
        default_region: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        at_least_once: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chatapi_conn_id = chatapi_conn_id
        self.default_region = default_region
        # Checked when the DAG is parsed, as the hook checks them: a bad value fails there, naming itself.
        self.timeout = checked_timeout(timeout)
        self.max_retries = checked_max_retries(max_retries)
        self.at_least_once = checked_flag(at_least_once, "at_least_once")

    @cached_property
    def hook(self) -> ChatApiHook:
        """The hook, built on first use from the connection id and this task's HTTP policy."""
        # Imported here: DAG files import this module on every parse, and the hook pulls in requests and httpx.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(self.chatapi_conn_id, timeout=self.timeout, max_retries=self.max_retries)

    def _ledger(self, context: Context) -> Ledger | None:
        """The task instance's record of its sends: kept across tries in its state store (Airflow 3.3+).

        Before 3.3 nothing outlives a try: the first try of a generation simply sends (None), and any later
        one (a retry, perhaps after a hard kill that no ``except`` saw) takes every send as lost since the
        DAG run started and settles it from the gateway's history before sending anything.
        """
        store = cast("StateStore | None", context.get("task_state_store"))  # not in the Context type before 3.3
        ti = context.get("ti")
        try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
        try_number = try_number if isinstance(try_number, int) and not isinstance(try_number, bool) else None
        # Which clear of this task instance the try belongs to (0 until the first clear): a clear sets the
        # instance's max_tries to try_number + retries and a retry leaves it alone, so max_tries - retries is
        # the try after which it was last cleared (Airflow's task runtime finds the first try since a clear
        # the same way). The run's clear_number would not do: Airflow raises it on a clear of any task in the run.
        generation = max(0, max_tries - (self.retries or 0)) if isinstance(max_tries, int) else 0
        if store is not None:
            return Ledger(store, try_number=try_number, generation=generation, at_least_once=self.at_least_once)
        self.log.warning(_NO_STATE_STORE.format("; at_least_once lets it retry" if self.at_least_once else ""))
        if try_number is None or try_number <= generation + 1:
            return None
        started = getattr(context.get("dag_run"), "start_date", None)
        if started is None:
            if self.at_least_once:
                return None
            raise AirflowFailException(
                f"Try {try_number} cannot tell what earlier tries of this task instance queued: Airflow < 3.3 "
                "keeps no record of them, and the DAG run has no start date to look for their cards from; nothing "
                "was sent (at most once). Clear the task to send again, or set at_least_once=True."
            )
        self.log.warning(_RETRY_WITHOUT_RECORD, try_number, started.isoformat())
        # On the Airflow components' clocks, which a deployment keeps in step: no margin, so that a card this
        # generation queued seconds after the run started is taken, not "cannot tell".
        since = Intent(math.floor(started.timestamp()), tied=False)
        return Ledger(None, lost_since=since, at_least_once=self.at_least_once)

    def execute(self, context: Context) -> Any:
        ledger = self._ledger(context)
        try:
            sent = self._send(ledger)
        except ChatApiError as error:
            self._fail_fast(error, resumable=ledger is not None and ledger.durable)
            raise
        finally:
            self.hook.close()
        # The job is done: one line in the task log for each card this try queued (the plan has already said
        # anything else; a fan-out's lines go to DEBUG, the hook logged its progress), and the job ids among the
        # results where a delivery sensor downstream finds them.
        results = sent if isinstance(sent, list) else [sent]
        log = self.log.info if len(results) == 1 else self.log.debug
        for result in results:
            if result.job_id is None and not result.earlier_try:
                log("Chat API queued message %s (%s)", result.id, result.message or "no message")
        jobs = [result.job_id for result in results if result.job_id is not None]
        ti = context.get("ti")
        if jobs and ti is not None:
            ti.xcom_push(key=JOB_IDS_XCOM_KEY, value=jobs)
        ids = [result.id for result in results]
        return ids if isinstance(sent, list) else ids[0]  # XCom: a batch's ids, or a single send's id

    def _send(self, ledger: Ledger | None) -> SendResult | list[SendResult]:
        """Send, through the hook, what this operator sends: one result, or a batch's list."""
        raise NotImplementedError

    def _may_retry(self, error: BaseException, *, resumable: bool) -> bool:
        """Whether another try can help without sending a card twice (``resumable``: a ledger keeps what
        this try sent)."""
        if isinstance(error, FanOutError):
            # Without a ledger a retry sends to every recipient again: never after a card was queued.
            retry = resumable or not error.queued
            return retry and all(self._may_retry(failure, resumable=resumable) for failure in error.failures.values())
        if isinstance(error, DeliveryUnknownError):
            return resumable or self.at_least_once
        return isinstance(error, NotSentError) and error.transient

    def _fail_fast(self, error: ChatApiError, *, resumable: bool) -> None:
        """Fail the task without retries when another try cannot help (a batch: cannot finish it without a
        duplicate); say first what a failed batch queued."""
        if isinstance(error, FanOutError):
            self._log_queued(error, resumable=resumable)
        if not self._may_retry(error, resumable=resumable):
            raise AirflowFailException(str(error)) from error

    def _log_queued(self, fan_out: FanOutError, *, resumable: bool) -> None:
        """Say what a failed fan-out queued, whose ids it returns nowhere: a line for all, then the ids,
        many to a line (at DEBUG where the ledger has them on record)."""
        queued = list(fan_out.queued.items())
        if not queued:
            return
        kept = "; they are on record, and neither a retry nor a clear sends them again" if resumable else ""
        self.log.info("%d of %d cards were queued before the failure%s", len(queued), len(fan_out.outcomes), kept)
        say = self.log.debug if resumable else self.log.info
        for start in range(0, len(queued), _IDS_PER_LINE):
            say(
                "Queued: %s", ", ".join(f"{chat} {result.id}" for chat, result in queued[start : start + _IDS_PER_LINE])
            )


class SendContactOperator(_ChatApiOperator):
    """Send one contact card, or several in one message, to a phone number or a chat.

    Give exactly one of ``contact_ids`` and ``contacts``, and exactly one of ``phone`` and ``chat_id``. Every
    argument is validated after templating and before anything is sent; a bad one fails the task at
    once, naming the argument and its value. The same arguments work on 1msg and on a classic gateway.

    :param contact_ids: the contacts by WhatsApp number (templated): a list, one id or number, an upstream
        task's output, or a rendered list, JSON array or comma-separated string. ``"+7 900 111-11-11"``
        becomes ``79001111111@c.us``; duplicates are dropped. On 1msg each becomes a card named by its number.
    :param contacts: full contact cards instead (templated): mappings such as ``{"name": "Ann Lee",
        "phone": "+7 900 111-11-11", "email": "ann@example.com", "org": "Acme"}``, or WhatsApp's full contact
        object. A classic gateway sends only each card's number, so there every card needs a phone.
    :param phone: the recipient's phone number (templated): ``+7 900 111-11-11``, ``0079001111111`` or
        ``79001111111`` with its country code, or written the national way with ``default_region``.
    :param chat_id: the recipient chat (templated): ``17633123456@c.us``, or a group ``…@g.us``.
    :param quoted_message_id: the id of a message in that chat to reply to (templated).
    :param default_region: where numbers written the national way (``8 (495) 123-45-67``, ``(650)
        555-1234``) are read, for the recipient, ``contact_ids`` and the phones on cards alike (templated):
        a two-letter country code such as ``"RU"``; by default the connection's ``default_region``. Without
        one, such numbers are refused, naming what they would have meant.
    :param chatapi_conn_id: the ``chatapi`` connection to send through (templated).
    :param timeout: seconds to wait for the gateway; overrides the connection's ``timeout``.
    :param max_retries: HTTP retries of requests the gateway certainly did not process (connect failure,
        429, 503); overrides the connection's ``max_retries``.
    :param at_least_once: when a retry cannot establish whether the card arrived, send again rather than
        fail: a card may then arrive twice, but never zero times. Off by default.

    Returns (XCom ``return_value``) the message id (``true_…`` classic, ``wamid.…`` on 1msg): the gateway
    queued the message, which is not yet delivery. A send 1msg took as a queued job returns the job id.

    A retry never sends a card twice: on Airflow 3.3+ the send is recorded in the task state store and a
    retry after a lost answer asks the gateway before sending; before 3.3 such a send fails without
    retrying, and a retry after a hard kill asks the gateway first. Bad input and permanent refusals fail
    without retrying. See ``docs/guarantees.md``.
    """

    template_fields: Sequence[str] = (*SEND_FIELDS, "chatapi_conn_id")

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

    def _send(self, ledger: Ledger | None) -> SendResult:
        return self.hook.send_contact(**{name: getattr(self, name) for name in SEND_FIELDS}, ledger=ledger)


class SendContactToManyOperator(_ChatApiOperator):
    """Send the same contact cards to many recipients from one task, concurrently.

    Up to ``max_in_flight`` requests are in flight at once over one connection pool, so 200 recipients
    take about ``200 / max_in_flight`` round trips, without a worker slot per recipient. Every argument is
    validated before the first request.

    :param recipients: phone numbers or chat ids (templated), in any form ``contact_ids`` takes; an item
        with an ``@`` is a chat id. Naming a recipient twice is an error.
    :param contact_ids: the contacts by number (templated); see :class:`SendContactOperator`.
    :param contacts: full contact cards instead (templated); see :class:`SendContactOperator`.
    :param quoted_message_id: a message id to reply to (templated); rarely useful across chats.
    :param default_region: as for :class:`SendContactOperator` (templated).
    :param max_in_flight: how many sends may be in flight at once (a whole number of at least 1).
    :param max_per_second: at most this many requests in any one second, as the gateway sees them (your
        channel's limit, rounded down); a 429 pauses the whole batch, with the gateway's ``Retry-After`` or
        an exponential backoff.
    :param chatapi_conn_id: the ``chatapi`` connection to send through (templated).
    :param timeout: as for :class:`SendContactOperator`.
    :param max_retries: as for :class:`SendContactOperator`.
    :param at_least_once: as for :class:`SendContactOperator`.

    Returns (XCom ``return_value``) the message ids, in recipient order.

    Each recipient keeps the no-duplicate guarantee of :class:`SendContactOperator`: on Airflow 3.3+ a
    retry skips the recipients already served (whatever their order in the new try) and reconciles those
    whose answer was lost. Before 3.3 a batch in which any card was, or may have been, queued fails without
    retrying, and logs the ids queued; a retry after a hard kill sends only to the recipients the gateway
    shows no card for. See ``docs/guarantees.md``.
    """

    template_fields: Sequence[str] = (
        "contact_ids",
        "contacts",
        "recipients",
        "quoted_message_id",
        "default_region",
        "chatapi_conn_id",
    )

    def __init__(
        self,
        *,
        recipients: Any,
        contact_ids: Any = None,
        contacts: Any = None,
        quoted_message_id: str | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_per_second: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_ids = contact_ids
        self.contacts = contacts
        self.recipients = recipients
        self.quoted_message_id = quoted_message_id
        self.max_in_flight = checked_max_in_flight(max_in_flight)  # when the DAG is parsed
        self.max_per_second = checked_max_per_second(max_per_second)

    def _send(self, ledger: Ledger | None) -> list[SendResult]:
        # Read before the event loop starts, as the single send does: in a task process that is one
        # plain request to the supervisor, and the connection is then read once for the whole batch.
        self.hook.settings  # noqa: B018
        return asyncio.run(self._send_all(ledger))

    async def _send_all(self, ledger: Ledger | None) -> list[SendResult]:
        try:
            return await self.hook.asend_to_many(
                self.contact_ids,
                self.recipients,
                contacts=self.contacts,
                quoted_message_id=self.quoted_message_id,
                default_region=self.default_region,
                max_in_flight=self.max_in_flight,
                max_per_second=self.max_per_second,
                ledger=ledger,
            )
        finally:
            await self.hook.aclose()
