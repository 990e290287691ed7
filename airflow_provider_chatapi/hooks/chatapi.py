"""The Chat API hook: a ``chatapi`` connection, and every request the provider makes.

Every send crosses :meth:`ChatApiHook.send_contact` (or its async twin), and every fan-out
:meth:`ChatApiHook.asend_to_many`: the operators and the notifier call these same methods, with a ledger
where retries must not send a card twice. The rules live in the private protocol package; the hook
drives its plans over ``requests`` (sync) or ``httpx`` (async).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import re
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import tenacity
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_chatapi import DEFAULT_CONN_ID
from airflow_provider_chatapi._protocol.acks import Delivery
from airflow_provider_chatapi._protocol.connection import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    GatewaySettings,
    connection_fields,
    settings_from_connection,
)
from airflow_provider_chatapi._protocol.http import secret_forms
from airflow_provider_chatapi._protocol.record import prepare_plan, send_plan, single_send_plan
from airflow_provider_chatapi._protocol.sends import (
    DEFAULT_MAX_IN_FLIGHT,
    SendResult,
    build_send_contact,
    build_send_to_many,
    checked_max_in_flight,
    checked_max_per_second,
    checked_max_retries,
    checked_timeout,
)
from airflow_provider_chatapi._protocol.whatsapp import checked_message_id, checked_region
from airflow_provider_chatapi.exceptions import ChatApiError, FanOutError, InvalidInputError
from airflow_provider_chatapi.hooks import _http
from airflow_provider_chatapi.hooks._form import legacy_field_behaviour, legacy_form_widgets, probe_failure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import httpx

    from airflow_provider_chatapi._protocol.http import Call, Plan
    from airflow_provider_chatapi._protocol.record import Ledger

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT", "ChatApiHook", "Delivery", "SendResult"]

_T = TypeVar("_T")
_R = TypeVar("_R")

_PROBE_TIMEOUT = 10.0  # Test connection's probe is never retried, and a button must not hang
# What Airflow takes as a connection id (its models.connection.sanitize_conn_id): no whitespace or markup.
_CONN_ID = re.compile(r"[\w#!().:/\\-]{1,250}")


class ChatApiHook(BaseHook):
    """Send WhatsApp contact cards through a Chat API gateway or 1msg, synchronously or asynchronously.

    The connection (type ``chatapi``) holds the instance's API URL in ``host`` (or the gateway's base URL
    in ``host`` and the instance id in ``login``), the API token in ``password``, and optionally
    ``dialect`` (``chatapi`` or ``1msg``), ``timeout`` (seconds), ``max_retries`` and ``default_region`` in its
    extra. Nothing is fetched or connected until the first call; one HTTP session serves every synchronous call
    and one ``httpx`` client every asynchronous call of an event loop, until :meth:`close` / :meth:`aclose`.

    :param chatapi_conn_id: the ``chatapi`` connection to use.
    :param timeout: seconds to wait to connect and to wait for an answer; overrides the connection.
    :param max_retries: retries of requests the gateway certainly did not process (connect failures,
        429, 503); overrides the connection. A request that may have queued a message is never retried.
    """

    conn_name_attr = "chatapi_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "chatapi"
    hook_name = "Chat API (WhatsApp)"

    def __init__(
        self,
        chatapi_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # A connection id as Airflow takes one: anything else would fail in Airflow's lookup, naming no field.
        if not isinstance(chatapi_conn_id, str) or not _CONN_ID.fullmatch(chatapi_conn_id):
            raise InvalidInputError(
                "chatapi_conn_id", chatapi_conn_id, "must be a connection id: up to 250 letters, digits or _-.:/\\#!()"
            )
        self.chatapi_conn_id = chatapi_conn_id
        self.timeout = None if timeout is None else checked_timeout(timeout)
        self.max_retries = None if max_retries is None else checked_max_retries(max_retries)
        self._settings: GatewaySettings | None = None
        self._requests: requests.Session | None = None
        self._async_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields for Airflow before 3.2 (later releases read them from provider info)."""
        return legacy_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The form's labels, placeholders and hidden fields for Airflow before 3.2."""
        return legacy_field_behaviour()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(chatapi_conn_id={self.chatapi_conn_id!r})"

    # ---- the connection ------------------------------------------------------------------------

    @property
    def settings(self) -> GatewaySettings:
        """The connection read on first use: ``api_url``, ``timeout``, ``max_retries``, ``dialect``; the token
        is registered with Airflow's log masker and left out of ``repr()``."""
        return self._settings or self._settings_from()

    async def asettings(self) -> GatewaySettings:
        """:attr:`settings`, with the connection read without blocking the event loop on any release."""
        return self._settings or self._settings_from(await self._aconnection_fields())

    async def _aconnection_fields(self) -> dict[str, Any]:
        conn = await get_async_connection(self.chatapi_conn_id, hook=self)
        return connection_fields(conn, await get_async_extra_dejson(conn))

    def _settings_from(self, fields: dict[str, Any] | None = None) -> GatewaySettings:
        """Read :attr:`settings` from the connection's ``fields`` (read here when not given), with this hook's
        overrides, and keep them."""
        # Only the fields go on, never the Connection in a local (see HiddenToken): each check below may refuse them.
        fields = fields or connection_fields(self.get_connection(self.chatapi_conn_id))
        settings = settings_from_connection(conn_id=self.chatapi_conn_id, **fields)
        for form in secret_forms(settings.token):
            mask_secret(form)
        timeout = settings.timeout if self.timeout is None else self.timeout
        max_retries = settings.max_retries if self.max_retries is None else self.max_retries
        self._settings = dataclasses.replace(settings, timeout=timeout, max_retries=max_retries)
        return self._settings

    def get_conn(self) -> requests.Session:
        """The HTTP session every synchronous call of this hook goes through (kept alive between calls)."""
        self._requests = self._requests or requests.Session()
        return self._requests

    def close(self) -> None:
        """Close the HTTP session, if one was opened; the hook opens another if used again."""
        if self._requests is not None:
            self._requests.close()
            self._requests = None

    async def aclose(self) -> None:
        """Close the ``httpx`` client, if one was opened, and the HTTP session."""
        opened, self._async_client = self._async_client, None
        if opened is not None:
            await opened[1].aclose()
        self.close()

    def __enter__(self) -> ChatApiHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- what users do ---------------------------------------------------------------------------

    def send_contact(
        self,
        contact_ids: Any = None,
        *,
        contacts: Any = None,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
        default_region: str | None = None,
        ledger: Ledger | None = None,
    ) -> SendResult:
        """Send contact cards to a phone number or a chat, in one message.

        Give the contacts as ``contact_ids`` (WhatsApp numbers, in any form the operators take) or as full
        ``contacts`` cards, and exactly one of ``phone`` and ``chat_id``. Every argument is validated before
        any request; the connection is read first only when a number's meaning depends on its
        ``default_region``. What only the connection's dialect can judge (a classic gateway needs a number
        on every card) is checked before the request is sent.

        :param default_region: where numbers written the national way (``8 (495) 123-45-67``) are read: an
            ISO country code such as ``"RU"``; None takes the connection's ``default_region``. Without
            either, only ``+…``, ``00…`` or bare digits with their country code are taken.

        :param ledger: where the operators record the send so that a retry never sends it twice; leave
            it out to simply send.
        :return: the queued message; ``id`` is its WhatsApp message id.
        :raises InvalidInputError: an argument cannot be sent; nothing was sent.
        :raises NotSentError: the gateway did not queue the message (see its subclasses).
        :raises DeliveryUnknownError: the message may have been queued; do not send it again blindly.
        """
        # The connection's region is read (once a send) only when a number needs it (an international number
        # never does), so that bad input fails before the connection is read.
        given = None if default_region is None else checked_region(default_region)
        region = given or functools.cache(lambda: self.settings.default_region)
        send = build_send_contact(
            contact_ids,
            contacts=contacts,
            phone=phone,
            chat_id=chat_id,
            quoted_message_id=quoted_message_id,
            region=region,
        )
        return self._drive(single_send_plan(send, dialect=self.settings.dialect, ledger=ledger, log=self.log))

    async def asend_contact(
        self,
        contact_ids: Any = None,
        *,
        contacts: Any = None,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
        default_region: str | None = None,
        ledger: Ledger | None = None,
    ) -> SendResult:
        """:meth:`send_contact`, asynchronously (with ``httpx``)."""
        settings = await self.asettings()
        region = checked_region(default_region) or settings.default_region
        send = build_send_contact(
            contact_ids,
            contacts=contacts,
            phone=phone,
            chat_id=chat_id,
            quoted_message_id=quoted_message_id,
            region=region,
        )
        return await self._adrive(single_send_plan(send, dialect=settings.dialect, ledger=ledger, log=self.log))

    async def asend_to_many(
        self,
        contact_ids: Any = None,
        recipients: Any = None,
        *,
        contacts: Any = None,
        quoted_message_id: str | None = None,
        default_region: str | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_per_second: float | None = None,
        ledger: Ledger | None = None,
    ) -> list[SendResult]:
        """Send the same cards to many recipients concurrently, at most ``max_in_flight`` at a time.

        ``recipients`` are phone numbers or chat ids, in any form ``contact_ids`` takes; the cards are
        ``contact_ids`` or ``contacts``, as for :meth:`send_contact`. Every argument is validated before
        the first request, and each send follows the rules of :meth:`send_contact`.

        :param default_region: as for :meth:`send_contact`.
        :param max_per_second: at most this many requests in any one second, as the gateway sees them (a
            WhatsApp channel's messages-per-second limit, rounded down); a 429 pauses the whole batch
            either way.
        :param ledger: the fan-out operator's record of the batch (settled with the gateway first, then
            written before and after each wave of sends); leave it out to simply send.
        :return: the queued messages, in recipient order.
        :raises FanOutError: after every send has finished, when any failed; its ``outcomes`` hold each
            recipient's result or error, in order.
        """
        bound = checked_max_in_flight(max_in_flight)
        rate = checked_max_per_second(max_per_second)
        settings = await self.asettings()
        region = checked_region(default_region) or settings.default_region
        sends = build_send_to_many(
            contact_ids, recipients, contacts=contacts, quoted_message_id=quoted_message_id, region=region
        )
        dialect = settings.dialect
        wire = [dialect.send_request(send) for send in sends]  # the batch fails whole before its first record
        if ledger is not None:
            await self._adrive(prepare_plan(sends, dialect=dialect, ledger=ledger, log=self.log))
        plans = [
            send_plan(send, request, dialect=dialect, ledger=ledger, log=self.log)
            for send, request in zip(sends, wire, strict=True)
        ]
        outcomes = await _http.run_batch(
            self._adrive,
            plans,
            max_in_flight=bound,
            log=self.log,
            label="Chat API fan-out",
            max_per_second=rate,
            checkpoints=ledger,
        )
        if any(isinstance(outcome, BaseException) for outcome in outcomes):
            raise FanOutError(outcomes, [send.chat_id for send in sends])
        return outcomes  # type: ignore[return-value]

    def get_delivery(self, message_id: str) -> Delivery:
        """How far a message got, from the gateway's delivery acks: ``state`` is ``sent``, ``delivered``,
        ``read``, ``failed`` (with ``reason`` and ``code``), or None before any ack.

        :raises DeliveryReportUnavailableError: the channel cannot report delivery by message id (a classic
            gateway never can; 1msg only where its Check ACKs endpoint answers).
        """
        return self._drive(self.settings.dialect.delivery_plan(checked_message_id(message_id)))

    async def aget_delivery(self, message_id: str) -> Delivery:
        """:meth:`get_delivery`, asynchronously."""
        return await self._adrive((await self.asettings()).dialect.delivery_plan(checked_message_id(message_id)))

    async def aget_deliveries(
        self, message_ids: Sequence[str], *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    ) -> list[Delivery | BaseException]:
        """:meth:`aget_delivery` of each message, at most ``max_in_flight`` at a time; each error is returned in
        its message's place, in order."""
        # A list or a tuple: a str is a sequence too, and "wamid.A" would be polled as seven one-letter ids.
        if not isinstance(message_ids, (list, tuple)):
            raise InvalidInputError("message_ids", message_ids, "must be a list of message ids")
        ids = [checked_message_id(item, field=f"message_ids[{index}]") for index, item in enumerate(message_ids)]
        bound = checked_max_in_flight(max_in_flight)
        dialect = (await self.asettings()).dialect  # after the arguments: a bad one fails before the connection is read
        plans = [dialect.delivery_plan(message_id) for message_id in ids]
        return await _http.run_batch(self._adrive, plans, max_in_flight=bound, log=self.log)

    def get_account_status(self) -> str:
        """The instance's status word (``authenticated``, ``connected``, ...), read without side effects."""
        return self._drive(self.settings.dialect.status_plan())

    async def aget_account_status(self) -> str:
        """:meth:`get_account_status`, asynchronously."""
        return await self._adrive((await self.asettings()).dialect.status_plan())

    def test_connection(self) -> tuple[bool, str]:
        """Probe the instance's status once, briefly: true only when the token works and the instance can send.

        A failure names the field to fix or what the gateway said, not the temporary connection the form
        tests.
        """
        try:
            with self._prober(self.settings) as probe:
                return probe.settings.dialect.describe_status(probe.get_account_status())
        except ChatApiError as error:
            return False, probe_failure(error)

    async def atest_connection(self) -> tuple[bool, str]:
        """:meth:`test_connection`, asynchronously."""
        try:
            async with contextlib.aclosing(self._prober(await self.asettings())) as probe:
                return probe.settings.dialect.describe_status(await probe.aget_account_status())
        except ChatApiError as error:
            return False, probe_failure(error)

    # ---- driving plans ---------------------------------------------------------------------------

    def _prober(self, settings: GatewaySettings) -> ChatApiHook:
        """A hook for one status probe: no retries, and a short wait."""
        probe = type(self)(self.chatapi_conn_id)
        probe._settings = dataclasses.replace(settings, timeout=min(settings.timeout, _PROBE_TIMEOUT), max_retries=0)
        return probe

    def _drive(self, plan: Plan[_T]) -> _T:
        """Run a protocol plan over this hook's HTTP session: each call's answer is sent into the plan, or its
        error thrown in, until the plan returns."""
        outcome: Any = None  # the last call's answer, or the error it raised
        while True:
            try:
                call = plan.throw(outcome) if isinstance(outcome, ChatApiError) else plan.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                outcome = self._call(call)
            except ChatApiError as error:
                outcome = error

    async def _adrive(self, plan: Plan[_T], pacer: _http.Pacer | None = None) -> _T:
        """:meth:`_drive` over this hook's ``httpx`` client for the running event loop (each request through
        the batch's ``pacer``, if any)."""
        loop = asyncio.get_running_loop()
        # One client for each event loop, kept between plans: TLS set-up is not cheap.
        if self._async_client is None or self._async_client[0] is not loop:
            self._async_client = (loop, _http.new_async_client(await self.asettings()))
        client = self._async_client[1]
        outcome: Any = None
        while True:
            try:
                call = plan.throw(outcome) if isinstance(outcome, ChatApiError) else plan.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                outcome = await self._acall(call, client, pacer)
            except ChatApiError as error:
                outcome = error

    def _call(self, call: Call[_T]) -> _T:
        settings = self.settings
        session = self.get_conn()
        try:
            return _http.call_with_requests(session, settings, call)
        except ChatApiError as error:
            if not (settings.max_retries and _http.retry_in_place(error)):
                raise
            retrying = tenacity.Retrying(**_http.retry_policy(settings.max_retries, self.log))
            return retrying(_replaying(error, _http.call_with_requests), session, settings, call)

    async def _acall(self, call: Call[_T], client: httpx.AsyncClient, pacer: _http.Pacer | None) -> _T:
        settings = await self.asettings()
        transport = pacer or _http.call_with_httpx
        try:
            return await transport(client, settings, call)
        except ChatApiError as error:
            if not (settings.max_retries and _http.retry_in_place(error)):
                raise
            retrying = tenacity.AsyncRetrying(**_http.retry_policy(settings.max_retries, self.log))
            return await retrying(_areplaying(error, transport), client, settings, call)


def _replaying(first: ChatApiError, attempt: Callable[..., _R]) -> Callable[..., _R]:
    """``attempt`` for tenacity to retry, whose first call re-raises the failure already met. Most calls
    succeed at once, and tenacity costs about 40 µs a call (``scripts/bench``, item 2: 1.09x to 1.16x the floor
    with this, 1.17x to 1.19x without), so it is entered only after a retryable failure."""
    pending = [first]

    def call(*args: Any) -> _R:
        if pending:
            raise pending.pop()
        return attempt(*args)

    return call


def _areplaying(first: ChatApiError, attempt: Callable[..., Awaitable[_R]]) -> Callable[..., Awaitable[_R]]:
    """:func:`_replaying` for a transport that is awaited (tenacity awaits only a coroutine function)."""
    replay = _replaying(first, attempt)

    async def call(*args: Any) -> _R:
        return await replay(*args)

    return call
