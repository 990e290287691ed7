"""The 1msg dialect: the live Chat API service on the official WhatsApp Business API.

``{base}/{instanceId}/{method}?token=…`` with no ``instance`` prefix; ``sendContact`` takes full contact
cards (``contacts``) and answers ``wamid.…`` ids. What sets it apart from the classic dialect:

- ``sent: false`` with a ``jobId`` is not a refusal: 1msg queued the send as a job. It must never be sent
  again, so it is a result (:attr:`SendResult.job_id`), not an error.
- Outside the 24-hour customer-service window WhatsApp refuses free-form messages: that refusal is a
  :class:`WindowClosedError`, recognised in whatever words or code it arrives with.
- 403 comes as plain text for trial or blocked channels; 429 comes without ``Retry-After`` (the hook's
  exponential backoff then applies).
- There is no outbound queue to list: a lost answer is looked for in the chat's history only, and a
  channel with history storage off answers a ``notice``, which means "cannot tell".

How an outgoing contact card appears in 1msg's history (its ``type`` and ``body``) is not documented:
:data:`CARD_TYPES` lists the types taken for one, and a card is recognised by its numbers in the body.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi._protocol.acks import delivery_request, parse_delivery
from airflow_provider_chatapi._protocol.cards import card_whatsapp_ids
from airflow_provider_chatapi._protocol.dialect import Dialect
from airflow_provider_chatapi._protocol.http import ApiRequest, Call, checked_payload, quote_gateway, unreadable_send
from airflow_provider_chatapi._protocol.reconcile import CardShape
from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import AuthenticationError, RejectedError, WindowClosedError

if TYPE_CHECKING:
    from airflow_provider_chatapi._protocol.acks import Delivery
    from airflow_provider_chatapi._protocol.http import ApiResponse, Plan
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["CARD_TYPES", "ONEMSG", "OneMsgDialect"]

CARD_TYPES = frozenset({"contacts", "contact", "vcard", "multi_vcard"})
"""History ``type`` values taken for a contact card: WhatsApp's own name, and the classic ones."""

# WhatsApp's words (and Meta's error code 131047) for a send outside the 24-hour window.
_WINDOW_CLOSED = re.compile(
    r"dialog window is closed|outside (?:of )?the allowed window|re-?engagement|\b131047\b", re.IGNORECASE
)
_FORBIDDEN = "nothing was queued; 1msg does not let this channel send (a trial channel, or one it blocked)"
_STATUSES = {
    "connected": "the channel is connected to WhatsApp and sends messages",
    "connecting": "the channel is connecting to WhatsApp; messages go out once it is connected",
    "disconnected": "the channel's WhatsApp client lost its link; nothing is sent until it reconnects",
    "uninitialized": "the channel is starting or being upgraded; try again in a few minutes",
    "unregistered": "the channel's number must be registered again (or was blocked); see 1msg's cabinet",
}


class OneMsgDialect(Dialect):
    name = "1msg"
    default_base_url = "https://api.1msg.io"
    # A classic-shaped /instance123 names the instance as clearly; 1msg's own form is /123.
    instance_in_path = re.compile(r"/(?:instance)?([0-9]+)$")
    status_key = "status"
    statuses = _STATUSES
    healthy = frozenset({"connected", "connecting"})
    status_noun = "channel status"

    instance_path = "/{}"

    def send_request(self, send: ContactSend) -> ApiRequest:
        # phone travels as a string: the 2.39.0 contract changed it from an integer.
        target = {"phone": send.phone} if send.phone is not None else {"chatId": send.chat_id}
        body: dict[str, Any] = {**target, "contacts": list(send.contacts)}
        if send.quoted_message_id is not None:
            body["quotedMsgId"] = send.quoted_message_id
        return ApiRequest("POST", "sendContact", json=body)

    def parse_send(self, response: ApiResponse) -> SendResult:
        endpoint = "sendContact"
        try:
            payload = checked_payload(response, endpoint, has_side_effect=True)
        except AuthenticationError as error:
            if error.status_code != 403:
                raise
            raise AuthenticationError(endpoint, error.gateway_message, status_code=403, outcome=_FORBIDDEN) from None
        except RejectedError as error:
            raise _refusal(error.gateway_message, response) from None
        message = response.shown(str(payload.get("message") or payload.get("description") or ""))
        message_id, job_id = payload.get("id"), payload.get("jobId")
        if payload.get("sent") is True and isinstance(message_id, str) and message_id:
            return SendResult(id=response.shown(message_id), sent=True, message=message, queue_number=None)
        if isinstance(job_id, (str, int)) and not isinstance(job_id, bool) and str(job_id):
            job = response.shown(str(job_id))
            return SendResult(id=job, sent=False, message=message, queue_number=None, job_id=job)
        if payload.get("sent") is False:
            raise _refusal(quote_gateway(message or "sent: false", response), response)
        raise unreadable_send(response)

    def delivery_plan(self, message_id: str) -> Plan[Delivery]:
        return (yield Call(delivery_request(message_id), functools.partial(parse_delivery, message_id)))

    def card_shape(self, send: ContactSend) -> CardShape:
        # A card is known by a WhatsApp id the writer gave, else by its name.
        if send.contact_ids:
            return CardShape(CARD_TYPES, tuple((number,) for number in send.contact_ids))
        return CardShape(
            CARD_TYPES, tuple(tuple(card_whatsapp_ids(card)) or card["name"]["formatted_name"] for card in send.cards)
        )


ONEMSG = OneMsgDialect()


def _refusal(said: str, response: ApiResponse) -> RejectedError:
    # The whole body is searched, not the shortened quote: a code at the end of a long text still counts.
    window_closed = _WINDOW_CLOSED.search(response.body.decode("utf-8", errors="replace") + " " + said)
    error_class = WindowClosedError if window_closed else RejectedError
    return error_class("sendContact", said, status_code=response.status_code)
