"""The classic chat-api.com dialect, still spoken by self-hosted and third-party gateways.

``{API_URL}/instance{ID}/{method}?token=…``; ``sendContact`` takes contact *ids* (``contactId``), so the
recipient sees WhatsApp's own name for each number, not the card's; ``status`` has ``no_wakeup``; a lost
answer is looked for in the chat's ``messages`` and in ``showMessagesQueue``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi.protocol.dialect import Dialect
from airflow_provider_chatapi.protocol.errors import (
    InvalidInputError,
    RejectedError,
)
from airflow_provider_chatapi.protocol.whatsapp import LID_SUFFIX, PRIVATE_SUFFIX
from airflow_provider_chatapi.protocol.wire import (
    CLOCK_SKEW,
    ApiRequest,
    ApiResponse,
    Call,
    Plan,
    SendResult,
    checked_payload,
    history_request,
    object_list,
    quote_gateway,
    status_word,
    unreadable_send,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow_provider_chatapi.protocol.sends import ContactSend

__all__ = ["CLASSIC", "ClassicDialect"]

_QUOTED_MESSAGE_ID = re.compile(r"(?:true|false)_[^\s_]+@[cg]\.us_[0-9A-Za-z]+(?:_[^\s_]+@c\.us)?")
_ACCOUNT_STATUSES = {
    "authenticated": "the instance is linked to its phone and delivers messages",
    "got qr code": "the phone is not linked yet: scan the QR code in the gateway's cabinet; messages queue until then",
    "loading": "the instance is starting; messages queue until it is up",
    "init": "the instance is starting; messages queue until it is up",
    "not_paid": "the instance is not paid for; messages are not delivered",
}


class ClassicDialect(Dialect):
    name = "chatapi"
    default_base_url = "https://api.chat-api.com"
    instance_in_path = re.compile(r"/instance([0-9]+)$")

    def instance_path(self, instance_id: str) -> str:
        return f"/instance{instance_id}"

    def send_request(self, send: ContactSend) -> ApiRequest:
        body: dict[str, Any] = {}
        if send.phone is not None:
            body["phone"] = send.phone
        elif send.chat_id.endswith(LID_SUFFIX):
            raise InvalidInputError("chat_id", send.chat_id, "the classic gateway knows no @lid chats; use @c.us")
        else:
            body["chatId"] = send.chat_id
        for index, card in enumerate(send.contacts):
            if not card.get("phones") or not any(phone.get("wa_id") for phone in card["phones"]):
                raise InvalidInputError(
                    f"contacts[{index}]",
                    card,
                    "the classic gateway sends a contact by its WhatsApp number, and this card has none",
                )
        body["contactId"] = list(dict.fromkeys(f"{number}{PRIVATE_SUFFIX}" for number in send.whatsapp_ids))
        if send.quoted_message_id is not None:
            if not _QUOTED_MESSAGE_ID.fullmatch(send.quoted_message_id):
                raise InvalidInputError(
                    "quoted_message_id",
                    send.quoted_message_id,
                    "a message id looks like 'false_17472822486@c.us_DF38E6A25B42CC8C'",
                )
            body["quotedMsgId"] = send.quoted_message_id
        return ApiRequest("POST", "sendContact", json=body)

    def parse_send(self, response: ApiResponse, endpoint: str = "sendContact") -> SendResult:
        payload = checked_payload(response, endpoint, has_side_effect=True)
        sent = payload.get("sent")
        message = str(payload.get("message") or "")
        if sent is False:
            raise RejectedError(endpoint, quote_gateway(message or "sent: false"), status_code=response.status_code)
        message_id = payload.get("id")
        if sent is not True or not isinstance(message_id, str) or not message_id:
            raise unreadable_send(response, endpoint)
        queue_number = payload.get("queueNumber")
        return SendResult(
            id=message_id,
            sent=True,
            message=message,
            queue_number=queue_number if isinstance(queue_number, int) and not isinstance(queue_number, bool) else None,
        )

    def status_request(self) -> ApiRequest:
        # no_wakeup keeps a sleeping instance asleep: a probe must have no side effect.
        return ApiRequest("GET", "status", params={"no_wakeup": "true"})

    def parse_status(self, response: ApiResponse) -> str:
        return status_word(response, "accountStatus")

    def describe_status(self, status: str) -> tuple[bool, str]:
        meaning = _ACCOUNT_STATUSES.get(status, "an account status this provider does not know")
        return status == "authenticated", f"Token accepted; account status {status!r}: {meaning}."

    def find_card_plan(self, send: ContactSend, *, since: float) -> Plan[str | None]:
        """In the chat's history, then in the outbound queue."""
        history = yield Call(build_message_history(send.chat_id, since=since), parse_message_history)
        found = find_contact_card(send, history, since=since)
        if found is None:
            queue = yield Call(ApiRequest("GET", "showMessagesQueue"), parse_message_queue)
            found = find_contact_card(send, queue, since=since)
        return found


CLASSIC = ClassicDialect()


def build_message_history(chat_id: str, *, since: float, limit: int = 100) -> ApiRequest:
    """The chat's messages since ``since``: where a sent card shows."""
    return history_request(chat_id, since=since, limit=limit)


def parse_message_history(response: ApiResponse) -> list[dict[str, Any]]:
    """The ``messages`` list of a ``messages`` answer."""
    return object_list(checked_payload(response, "messages", has_side_effect=False), "messages", "messages")


def parse_message_queue(response: ApiResponse) -> list[dict[str, Any]]:
    """The ``first100`` list of a ``showMessagesQueue`` answer."""
    return object_list(
        checked_payload(response, "showMessagesQueue", has_side_effect=False), "first100", "showMessagesQueue"
    )


def find_contact_card(send: ContactSend, entries: Iterable[Mapping[str, Any]], *, since: float) -> str | None:
    """The id of the first message among ``entries`` that is the card ``send`` would have queued.

    ``entries`` come from the chat's history or the outbound queue. A match is an outgoing contact card
    (``vcard`` for one contact, ``multi_vcard`` for several) to the same chat, no older than ``since``
    less :data:`CLOCK_SKEW`, whose text names every contact's number. A field the gateway leaves out
    (the queue may carry no chat id or time) is not held against the entry.
    """
    numbers = list(dict.fromkeys(send.whatsapp_ids))
    card_type = "vcard" if len(numbers) == 1 else "multi_vcard"
    for entry in entries:
        entry_chat = entry.get("chatId") or (entry.get("metadata") or {}).get("chatId")
        entry_time = entry.get("time", entry.get("last_try"))
        text = entry.get("body")
        if (
            entry.get("type") == card_type
            and entry.get("fromMe", True) is True
            and entry_chat in (None, send.chat_id)
            and (not isinstance(entry_time, (int, float)) or entry_time >= since - CLOCK_SKEW)
            and (not isinstance(text, str) or all(number in text for number in numbers))
            and isinstance(entry.get("id"), str)
        ):
            return entry["id"]
    return None
