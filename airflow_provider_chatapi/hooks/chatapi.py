"""The synchronous Chat API hook: a ``chatapi`` connection, the protocol rules, and ``requests``."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, SSLError
from urllib3.util.retry import Retry

from airflow_provider_chatapi import protocol
from airflow_provider_chatapi.protocol import ApiRequest, ApiResponse, ChatApiError, GatewaySettings, SendResult

MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured inside one try; a longer wait is left to Airflow's task retries."""
BACKOFF_FACTOR = 0.5
"""Seconds before the second retry of a connect failure or 503; doubles after each (urllib3 backoff)."""
# Only answers that prove the gateway queued nothing are retried here. A read timeout, a reset after
# the request was written, or a 500/502/504 may hide a queued message, and the protocol has no
# idempotency key: re-sending those could deliver the card twice.
RETRY_STATUSES = frozenset({429, 503})


class _GatewayRetry(Retry):
    """urllib3's retry with ``Retry-After`` capped at :data:`MAX_RETRY_AFTER`."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)


def retry_policy(max_retries: int) -> Retry:
    """The retries that can never duplicate a message: connect failures, 429 and 503 only."""
    return _GatewayRetry(
        total=max_retries,
        connect=max_retries,
        status=max_retries,
        read=0,
        other=0,
        redirect=0,
        allowed_methods=None,  # POST too: a 429/503 answer means nothing was queued
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 429/503 is parsed into the error that says what the gateway said
        raise_on_redirect=False,
    )


class ChatApiHook(BaseHook):
    """Send WhatsApp contact cards through a Chat API gateway instance.

    The connection (type ``chatapi``) holds the instance's API URL in ``host`` (or the gateway's base URL
    in ``host`` and the instance id in ``login``), the API token in ``password``, and optionally
    ``timeout`` (seconds) and ``max_retries`` in its extra. Nothing is fetched or connected until the
    first call; one HTTP session is kept for all calls of the hook.

    :param chatapi_conn_id: the ``chatapi`` connection to use.
    :param timeout: seconds to wait to connect and to wait for an answer; overrides the connection.
    :param max_retries: retries of requests the gateway certainly did not process (connect failures,
        429, 503); overrides the connection. A request that may have queued a message is never retried.
    """

    conn_name_attr = "chatapi_conn_id"
    default_conn_name = "chatapi_default"
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

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form for Airflow before 3.2, which does not read it from provider info.

        Those releases cannot show the ``timeout`` and ``max_retries`` fields declared there, so the
        Extra box stays visible for them.
        """
        from airflow_provider_chatapi import get_provider_info

        (connection_type,) = get_provider_info()["connection-types"]
        behaviour = connection_type["ui-field-behaviour"]
        standard_fields = {"host", "login", "password", "schema", "port", "extra"}
        return {
            "hidden_fields": [name for name in behaviour["hidden-fields"] if name != "extra"],
            "relabeling": behaviour["relabeling"],
            "placeholders": {k: v for k, v in behaviour["placeholders"].items() if k in standard_fields},
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(chatapi_conn_id={self.chatapi_conn_id!r})"

    @cached_property
    def settings(self) -> GatewaySettings:
        """The connection read into settings; the token is registered with Airflow's log masker."""
        conn = self.get_connection(self.chatapi_conn_id)
        settings = protocol.settings_from_connection(
            conn_id=self.chatapi_conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            port=conn.port,
            extra=conn.extra_dejson,
        )
        for form in protocol.secret_forms(settings.token):
            mask_secret(form)
        overrides = {"timeout": self.timeout, "max_retries": self.max_retries}
        return settings.replace(**{name: value for name, value in overrides.items() if value is not None})

    @cached_property
    def session(self) -> requests.Session:
        """The HTTP session, reused by every call so that the connection to the gateway is kept alive."""
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry_policy(self.settings.max_retries))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def send_contact(
        self,
        contact_ids: Any,
        *,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
    ) -> SendResult:
        """Send one contact card, or a list of them, to a phone number or a chat.

        The arguments are validated before the connection is even read; see
        :func:`~airflow_provider_chatapi.protocol.normalize_contact_ids` for the forms accepted.

        :return: the queued message; ``id`` is its WhatsApp message id.
        :raises InvalidInputError: an argument cannot be sent; nothing was sent.
        :raises NotSentError: the gateway did not queue the message (see its subclasses).
        :raises DeliveryUnknownError: the message may have been queued; do not send it again blindly.
        """
        return self.send(
            protocol.build_send_contact(contact_ids, phone=phone, chat_id=chat_id, quoted_message_id=quoted_message_id)
        )

    def send(self, request: ApiRequest) -> SendResult:
        """Send a request built by :func:`~airflow_provider_chatapi.protocol.build_send_contact`."""
        return protocol.parse_send_response(self.call(request))

    def find_contact_card(self, request: ApiRequest, *, since: float) -> str | None:
        """The id of a card matching ``request`` that the gateway sent or queued since ``since`` (unix s).

        Looks in the chat's history, then in the outbound queue; None when neither shows one.
        """
        history = self.call(protocol.build_message_history(protocol.recipient_chat_id(request), since=since))
        found = protocol.find_contact_card(request, protocol.parse_message_history(history), since=since)
        if found is None:
            queue = protocol.parse_message_queue(self.call(protocol.build_message_queue()))
            found = protocol.find_contact_card(request, queue, since=since)
        return found

    def get_account_status(self) -> str:
        """Return the instance's ``accountStatus`` without waking it up."""
        return protocol.parse_status_response(self.call(protocol.build_status()))

    def test_connection(self) -> tuple[bool, str]:
        """Probe the instance's status: true only when the token works and the instance can deliver."""
        try:
            status = self.get_account_status()
        except ChatApiError as error:
            return False, str(error)
        return protocol.describe_account_status(status)

    def call(self, request: ApiRequest) -> ApiResponse:
        """Make one request with the token added; raise the protocol's error if no answer came."""
        settings = self.settings
        try:
            response = self.session.request(
                request.method,
                settings.url(request.endpoint),
                params={**request.params, "token": settings.token},
                json=request.json,
                timeout=settings.timeout,
            )
        except requests.RequestException as error:
            # requests puts the full URL, token included, in its messages: scrub it, and drop the
            # original from the traceback (``from None``) so that it cannot be printed either.
            detail = protocol.scrub_secret(_describe(error), settings.token)
            failure = protocol.connection_failed if _never_sent(error) else protocol.response_lost
            raise failure(request, detail) from None
        return protocol.read_response(response.status_code, response.headers, response.content, secret=settings.token)


def _describe(error: requests.RequestException) -> str:
    """The innermost cause: requests wraps urllib3's in a message about retries and the URL."""
    cause: BaseException = error
    if error.args and isinstance(error.args[0], MaxRetryError) and error.args[0].reason is not None:
        cause = error.args[0].reason
    return f"{type(cause).__name__}: {cause}"


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
