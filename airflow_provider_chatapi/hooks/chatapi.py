"""The Chat API hook: a ``chatapi`` connection, the protocol's plans, and two thin transports.

Every rule (validation, request building, reading answers, classifying failures, retrying) lives in
:mod:`airflow_provider_chatapi.protocol` or here once; the synchronous transport moves bytes with
``requests`` and the asynchronous one with ``httpx``, and both drive the same plans. The connection
chooses the dialect (classic Chat API or 1msg); the hook runs its plans without looking inside.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import requests
import tenacity
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook, mask_secret, redact
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, SSLError

from airflow_provider_chatapi import DEFAULT_CONN_ID
from airflow_provider_chatapi.hooks.form import field_label, legacy_field_behaviour, legacy_form_widgets
from airflow_provider_chatapi.protocol import wire
from airflow_provider_chatapi.protocol.connection import settings_from_connection
from airflow_provider_chatapi.protocol.errors import (
    AuthenticationError,
    ChatApiError,
    ConnectionConfigError,
    GatewayError,
    NotSentError,
)
from airflow_provider_chatapi.protocol.sends import (
    build_send_contact,
    build_send_to_many,
    checked_max_in_flight,
    fan_out_failure,
)
from airflow_provider_chatapi.protocol.wire import DEFAULT_MAX_IN_FLIGHT, PlanSteps

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_chatapi.protocol.dialect import Dialect
    from airflow_provider_chatapi.protocol.sends import ContactSend
    from airflow_provider_chatapi.protocol.wire import Call, GatewaySettings, Plan, SendResult

T = TypeVar("T")

MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` waited out inside one call; a longer one is left to Airflow's task retries."""
BACKOFF_FACTOR = 0.5
"""Seconds before the first retry when the gateway gives no ``Retry-After``; doubles after each."""
MAX_BACKOFF = 10.0
PROBE_TIMEOUT = 10.0
"""Longest wait for Test connection's status probe, which is never retried: a button must not hang."""
# httpx errors raised before the request could be written: nothing can have been queued.
_HTTPX_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class _MaskedRequestLog(logging.Filter):
    """httpx logs every request with its URL, token and all, as an ``httpx.URL`` argument; Airflow 2.11 and
    3.0 mask only text arguments, so the record is formatted here and masked as text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = redact(record.getMessage()), ()
        return True


_HTTPX_LOG = logging.getLogger("httpx")
_MASKED_REQUEST_LOG = _MaskedRequestLog()


def _retry_in_place(error: BaseException) -> bool:
    # Only a failure that proves the gateway queued nothing is retried: a read timeout, a reset after
    # the request was written or a 500/502/504 may hide a queued message, and the protocol has no
    # idempotency key, so re-sending those could deliver the card twice.
    if not isinstance(error, NotSentError) or not error.transient:
        return False
    return error.retry_after is None or error.retry_after <= MAX_RETRY_AFTER


def _wait(state: tenacity.RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, NotSentError) and error.retry_after is not None:
        return error.retry_after
    return min(BACKOFF_FACTOR * 2 ** (state.attempt_number - 1), MAX_BACKOFF)


def retry_policy(max_retries: int) -> dict[str, Any]:
    """tenacity's arguments for retrying a call: connect failures, 429 and 503 only, honouring ``Retry-After``."""
    return {
        "retry": tenacity.retry_if_exception(_retry_in_place),
        "stop": tenacity.stop_after_attempt(max_retries + 1),
        "wait": _wait,
        "reraise": True,
    }


class ChatApiHook(BaseHook):
    """Send WhatsApp contact cards through a Chat API gateway or 1msg, synchronously or asynchronously.

    The connection (type ``chatapi``) holds the instance's API URL in ``host`` (or the gateway's base URL
    in ``host`` and the instance id in ``login``), the API token in ``password``, and optionally
    ``dialect`` (``chatapi`` or ``1msg``), ``timeout`` (seconds) and ``max_retries`` in its extra; see
    :mod:`airflow_provider_chatapi.protocol.connection`. Nothing is fetched or connected until the first
    call; one HTTP session is kept for all synchronous calls of the hook.

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
        self.chatapi_conn_id = chatapi_conn_id
        self.timeout = timeout
        self.max_retries = max_retries
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

    # ---- settings -----------------------------------------------------------------------------

    @cached_property
    def settings(self) -> GatewaySettings:
        """The connection read into settings; the token is registered with Airflow's log masker."""
        conn = self.get_connection(self.chatapi_conn_id)
        return self._settings_from(conn, conn.extra_dejson)

    @property
    def dialect(self) -> Dialect:
        """The protocol the connection speaks (reads the connection)."""
        return self.settings.dialect

    async def asettings(self) -> GatewaySettings:
        """:attr:`settings`, with the connection read without blocking the event loop on any release."""
        if "settings" not in self.__dict__:
            conn = await get_async_connection(self.chatapi_conn_id, hook=self)
            self.__dict__["settings"] = self._settings_from(conn, await get_async_extra_dejson(conn))
        return self.settings

    def _settings_from(self, conn: Connection, extra: dict[str, Any]) -> GatewaySettings:
        settings = settings_from_connection(
            conn_id=self.chatapi_conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            port=conn.port,
            schema=conn.schema,
            extra=extra,
        )
        for form in wire.secret_forms(settings.token):
            mask_secret(form)
        overrides = {"timeout": self.timeout, "max_retries": self.max_retries}
        return settings.replace(**{name: value for name, value in overrides.items() if value is not None})

    # ---- synchronous ----------------------------------------------------------------------------

    @cached_property
    def session(self) -> requests.Session:
        """The HTTP session, reused by every call so that the connection to the gateway is kept alive."""
        return requests.Session()

    def send_contact(
        self,
        contact_ids: Any = None,
        *,
        contacts: Any = None,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
    ) -> SendResult:
        """Send contact cards to a phone number or a chat, in one message.

        Give the contacts as ``contact_ids`` (WhatsApp numbers; see
        :func:`~airflow_provider_chatapi.protocol.whatsapp.normalize_contact_ids` for the forms accepted)
        or as full ``contacts`` cards (see :mod:`~airflow_provider_chatapi.protocol.cards`), and exactly one
        of ``phone`` and ``chat_id``. The arguments are validated before the connection is even read; what
        only the connection's dialect can judge (a classic gateway needs a number on every card) is
        checked before the request is sent.

        :return: the queued message; ``id`` is its WhatsApp message id.
        :raises InvalidInputError: an argument cannot be sent; nothing was sent.
        :raises NotSentError: the gateway did not queue the message (see its subclasses).
        :raises DeliveryUnknownError: the message may have been queued; do not send it again blindly.
        """
        send = build_send_contact(
            contact_ids, contacts=contacts, phone=phone, chat_id=chat_id, quoted_message_id=quoted_message_id
        )
        return self.run(self.dialect.send_plan(send))

    def find_contact_card(self, send: ContactSend, *, since: float) -> str | None:
        """The id of a card matching ``send`` that the gateway sent or queued since ``since`` (unix s)."""
        return self.run(self.dialect.find_card_plan(send, since=since))

    def get_account_status(self) -> str:
        """Return the instance's status word (``authenticated``, ``connected``, ...) without side effects."""
        return self.run(self.dialect.status_plan())

    def test_connection(self) -> tuple[bool, str]:
        """Probe the instance's status once, briefly: true only when the token works and the instance can send.

        A failure names the field to fix or what the gateway said, not the temporary connection the form
        tests.
        """
        try:
            with self._prober(self.settings) as probe:
                return self.dialect.describe_status(probe.get_account_status())
        except ChatApiError as error:
            return False, _probe_failure(error)

    def _prober(self, settings: GatewaySettings) -> ChatApiHook:
        """A hook for one status probe: no retries, and a short wait."""
        probe = type(self)(self.chatapi_conn_id)
        probe.__dict__["settings"] = settings.replace(timeout=min(settings.timeout, PROBE_TIMEOUT), max_retries=0)
        return probe

    def run(self, plan: Plan[T]) -> T:
        """Drive a protocol plan over this hook's HTTP session."""
        steps = PlanSteps(plan)
        for call in steps:
            try:
                steps.answer(self._call_retrying(call))
            except ChatApiError as error:
                steps.fail(error)
        return steps.result

    def close(self) -> None:
        """Close the HTTP session, if one was opened; the hook opens another if used again."""
        session = self.__dict__.pop("session", None)
        if session is not None:
            session.close()

    def __enter__(self) -> ChatApiHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call_retrying(self, call: Call[T]) -> T:
        # Most calls succeed at once: the retry machinery is entered only after a retryable failure.
        try:
            return self._call(call)
        except ChatApiError as error:
            if not self._retries_left(error):
                raise
            first = error
        return tenacity.Retrying(**self._retry_policy())(_replaying(first, self._call), call)

    def _retries_left(self, error: ChatApiError) -> bool:
        return self.settings.max_retries > 0 and _retry_in_place(error)

    def _call(self, call: Call[T]) -> T:
        settings = self.settings
        try:
            response = self.session.request(
                **settings.http_arguments(call.request), timeout=settings.timeout, allow_redirects=False
            )
        except requests.RequestException as error:
            # requests puts the full URL, token included, in its messages: scrub it, and drop the
            # original from the traceback (``from None``) so that it cannot be printed either.
            detail = wire.scrub_secret(_describe(error), settings.token)
            failure = wire.connection_failed if _never_sent(error) else wire.response_lost
            raise failure(call.request, detail) from None
        return call.parse(
            wire.read_response(response.status_code, response.headers, response.content, secret=settings.token)
        )

    def _retry_policy(self) -> dict[str, Any]:
        return {**retry_policy(self.settings.max_retries), "before_sleep": self._log_retry}

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning("%s; retrying in %.1f s (attempt %d)", error, wait, state.attempt_number + 1)

    # ---- asynchronous ---------------------------------------------------------------------------

    async def asend_contact(
        self,
        contact_ids: Any = None,
        *,
        contacts: Any = None,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
    ) -> SendResult:
        """:meth:`send_contact`, asynchronously (with ``httpx``)."""
        send = build_send_contact(
            contact_ids, contacts=contacts, phone=phone, chat_id=chat_id, quoted_message_id=quoted_message_id
        )
        return await self.arun((await self.asettings()).dialect.send_plan(send))

    async def afind_contact_card(self, send: ContactSend, *, since: float) -> str | None:
        """:meth:`find_contact_card`, asynchronously."""
        return await self.arun((await self.asettings()).dialect.find_card_plan(send, since=since))

    async def aget_account_status(self) -> str:
        """:meth:`get_account_status`, asynchronously."""
        return await self.arun((await self.asettings()).dialect.status_plan())

    async def atest_connection(self) -> tuple[bool, str]:
        """:meth:`test_connection`, asynchronously."""
        try:
            probe = self._prober(await self.asettings())
            try:
                return probe.dialect.describe_status(await probe.aget_account_status())
            finally:
                await probe.aclose()
        except ChatApiError as error:
            return False, _probe_failure(error)

    async def asend_to_many(
        self,
        contact_ids: Any = None,
        recipients: Any = None,
        *,
        contacts: Any = None,
        quoted_message_id: str | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> list[SendResult]:
        """Send the same cards to many recipients concurrently, at most ``max_in_flight`` at a time.

        ``recipients`` are phone numbers or chat ids, in any form ``contact_ids`` takes; the cards are
        ``contact_ids`` or ``contacts``, as for :meth:`send_contact`. Every argument is validated before
        the first request. Each send follows the rules of :meth:`send_contact`.

        :return: the queued messages, in recipient order.
        :raises FanOutError: after every send has finished, when any failed; its ``outcomes`` hold each
            recipient's result or error, in order.
        """
        sends = build_send_to_many(contact_ids, recipients, contacts=contacts, quoted_message_id=quoted_message_id)
        dialect = (await self.asettings()).dialect
        dialect.check(sends)
        outcomes = await self.arun_many([dialect.send_plan(send) for send in sends], max_in_flight=max_in_flight)
        failure = fan_out_failure(outcomes, sends)
        if failure is not None:
            raise failure
        return outcomes  # type: ignore[return-value]

    async def arun_many(
        self, plans: Sequence[Plan[T]], *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    ) -> list[T | BaseException]:
        """Drive plans concurrently over one connection pool, at most ``max_in_flight`` at a time.

        Every plan started runs to its end, whatever the others do; a plan's error, of any kind, is
        returned in its place rather than raised.
        """
        in_flight = asyncio.Semaphore(checked_max_in_flight(max_in_flight))

        async def run_one(plan: Plan[T]) -> T:
            async with in_flight:
                return await self.arun(plan)

        return list(await asyncio.gather(*(run_one(plan) for plan in plans), return_exceptions=True))

    async def arun(self, plan: Plan[T]) -> T:
        """Drive a protocol plan with ``httpx``, over the hook's client for this event loop."""
        http = await self.aclient()
        steps = PlanSteps(plan)
        for call in steps:
            try:
                steps.answer(await self._acall_retrying(call, http))
            except ChatApiError as error:
                steps.fail(error)
        return steps.result

    async def aclient(self) -> httpx.AsyncClient:
        """The hook's ``httpx`` client for the running event loop, built once (TLS set-up is not cheap)."""
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_client[0] is not loop:
            settings = await self.asettings()
            _HTTPX_LOG.addFilter(_MASKED_REQUEST_LOG)  # once: a filter already there is not added again
            self._async_client = (loop, httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False))
        return self._async_client[1]

    async def aclose(self) -> None:
        """Close the ``httpx`` client of the running event loop, and the HTTP session."""
        if self._async_client is not None:
            _, client = self._async_client
            self._async_client = None
            await client.aclose()
        self.close()

    async def _acall_retrying(self, call: Call[T], client: httpx.AsyncClient) -> T:
        try:
            return await self._acall(call, client)
        except ChatApiError as error:
            if not self._retries_left(error):
                raise
            first = error
        return await tenacity.AsyncRetrying(**self._retry_policy())(_areplaying(first, self._acall), call, client)

    async def _acall(self, call: Call[T], client: httpx.AsyncClient) -> T:
        settings = await self.asettings()
        try:
            response = await client.request(**settings.http_arguments(call.request))
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            detail = wire.scrub_secret(_describe_httpx(error), settings.token)
            failure = wire.connection_failed if isinstance(error, _HTTPX_NEVER_SENT) else wire.response_lost
            raise failure(call.request, detail) from None
        return call.parse(
            wire.read_response(response.status_code, response.headers, response.content, secret=settings.token)
        )


def _replaying(first: ChatApiError, attempt: Callable[..., T]) -> Callable[..., T]:
    """``attempt`` for tenacity to retry, whose first call re-raises the failure already met."""
    pending = [first]

    def call(*args: Any) -> T:
        if pending:
            raise pending.pop()
        return attempt(*args)

    return call


def _areplaying(first: ChatApiError, attempt: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """:func:`_replaying` for a coroutine function."""
    pending = [first]

    async def call(*args: Any) -> T:
        if pending:
            raise pending.pop()
        return await attempt(*args)

    return call


def _probe_failure(error: ChatApiError) -> str:
    """What Test connection says when the probe fails: the form field to fix, or what the gateway said and
    what to check (never what a send's failure would mean for a message)."""
    if isinstance(error, ConnectionConfigError):
        return f"{field_label(error.setting)}: {error.problem}"
    if not isinstance(error, GatewayError):
        return str(error)
    answer = f"HTTP {error.status_code}" if error.status_code is not None else "no answer"
    if isinstance(error, AuthenticationError):
        hint = "check the API token (and, on 1msg, that the channel may use the API)"
    elif isinstance(error, NotSentError) and error.transient:
        hint = "the gateway is busy or unreachable; check the API URL, or try again later"
    elif error.status_code == 404:
        hint = "no such instance at this address: check the API URL, the Instance ID and the Dialect"
    else:
        hint = "check the API URL and the Dialect"
    return f"The gateway's status probe failed ({answer}): {error.gateway_message}. {hint.capitalize()}."


def _describe(error: requests.RequestException) -> str:
    """The innermost cause: requests wraps urllib3's in a message about retries and the URL."""
    cause: BaseException = error
    if error.args and isinstance(error.args[0], MaxRetryError) and error.args[0].reason is not None:
        cause = error.args[0].reason
    return f"{type(cause).__name__}: {cause}"


def _describe_httpx(error: Exception) -> str:
    """httpx's errors often have no text of their own: name the socket error behind them, if any."""
    if isinstance(error, httpx.TimeoutException):
        return f"{type(error).__name__}: timed out"  # its causes speak of cancel scopes, not of the gateway
    cause: BaseException | None = error
    for _ in range(10):  # a bounded walk: chains of causes can loop
        if cause is None or (isinstance(cause, OSError) and str(cause)):
            break
        cause = cause.__cause__ or cause.__context__
    text = str(cause if cause is not None else error)
    return f"{type(error).__name__}: {text or 'no detail'}"


def _never_sent(error: requests.RequestException) -> bool:
    """Whether the request certainly never reached the gateway (so nothing can have been queued)."""
    if isinstance(error, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0].reason if error.args and isinstance(error.args[0], MaxRetryError) else None
        # urllib3's NewConnectionError (refused, DNS failure) is a ConnectTimeoutError.
        return isinstance(reason, (ConnectTimeoutError, SSLError))
    # Timeouts and broken answers come after the request was written; anything else requests raises
    # (bad URL, bad header) comes before it.
    return not isinstance(
        error, (requests.Timeout, requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    )
