"""The classic chat-api.com dialect, still spoken by self-hosted and third-party gateways.

``{API_URL}/instance{ID}/{method}?token=…``; ``sendContact`` takes contact *ids* (``contactId``), so the
recipient sees WhatsApp's own name for each number, not the card's; ``status`` has ``no_wakeup``; a lost
answer is looked for in the chat's ``messages`` and in ``showMessagesQueue``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow_provider_chatapi._protocol.cards import card_numbers
from airflow_provider_chatapi._protocol.dialect import Dialect
from airflow_provider_chatapi._protocol.http import (
    ApiRequest,
    Call,
    checked_payload,
    object_list,
    quote_gateway,
    unreadable_send,
)
from airflow_provider_chatapi._protocol.reconcile import CardShape, HistoryPage
from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi._protocol.whatsapp import LID_SUFFIX, PRIVATE_SUFFIX
from airflow_provider_chatapi.exceptions import DeliveryReportUnavailableError, InvalidInputError, RejectedError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_chatapi._protocol.acks import Delivery
    from airflow_provider_chatapi._protocol.http import ApiResponse, Plan
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["CLASSIC", "ClassicDialect"]


_SINGLE, _MULTI = frozenset({"vcard"}), frozenset({"multi_vcard"})
_QUOTED_MESSAGE_ID = re.compile(r"(?:true|false)_[^\s_]+@[cg]\.us_[0-9A-Za-z]+(?:_[^\s_]+@c\.us)?")
_STATUSES = {
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
    # no_wakeup keeps a sleeping instance asleep: a probe has no side effect.
    status_params: ClassVar[Mapping[str, str]] = {"no_wakeup": "true"}
    status_key = "accountStatus"
    statuses = _STATUSES
    healthy = frozenset({"authenticated"})
    status_noun = "account status"

    instance_path = "/instance{}"

    def send_request(self, send: ContactSend) -> ApiRequest:
        body: dict[str, Any] = {}
        if send.phone is not None:
            body["phone"] = send.phone
        elif send.chat_id.endswith(LID_SUFFIX):
            raise InvalidInputError("chat_id", send.chat_id, "the classic gateway knows no @lid chats; use @c.us")
        else:
            body["chatId"] = send.chat_id
        body["contactId"] = [f"{number}{PRIVATE_SUFFIX}" for number in send.contact_ids or _card_numbers(send)]
        if send.quoted_message_id is not None:
            if not _QUOTED_MESSAGE_ID.fullmatch(send.quoted_message_id):
                raise InvalidInputError(
                    "quoted_message_id",
                    send.quoted_message_id,
                    "a message id looks like 'false_17472822486@c.us_DF38E6A25B42CC8C'",
                )
            body["quotedMsgId"] = send.quoted_message_id
        return ApiRequest("POST", "sendContact", json=body)

    def parse_send(self, response: ApiResponse) -> SendResult:
        endpoint = "sendContact"
        payload = checked_payload(response, endpoint, has_side_effect=True)
        sent = payload.get("sent")
        message = str(payload.get("message") or "")
        if sent is False:
            raise RejectedError(
                endpoint, quote_gateway(message or "sent: false", response), status_code=response.status_code
            )
        message_id = payload.get("id")
        if sent is not True or not isinstance(message_id, str) or not message_id:
            raise unreadable_send(response)
        queue_number = payload.get("queueNumber")
        return SendResult(
            id=response.shown(message_id),
            sent=True,
            message=response.shown(message),
            queue_number=queue_number if isinstance(queue_number, int) and not isinstance(queue_number, bool) else None,
        )

    def check_delivery_reports(self) -> NoReturn:
        raise DeliveryReportUnavailableError(
            "the classic Chat API reports delivery acks only by webhook; it has no endpoint to ask about a message"
        )

    def delivery_plan(self, message_id: str) -> Plan[Delivery]:
        self.check_delivery_reports()

    def card_shape(self, send: ContactSend) -> CardShape:
        """One vCard per number sent (cards that share a number go out as one): ``vcard`` for one, else
        ``multi_vcard``."""
        numbers = send.contact_ids or _card_numbers(send)
        return CardShape(_SINGLE if len(numbers) == 1 else _MULTI, tuple((number,) for number in numbers))

    def lookup_plan(self, chat_id: str | None, min_time: int) -> Plan[tuple[HistoryPage, bool]]:
        """The history since ``min_time`` and the outbound queue, taken together: complete unless the queue
        holds more than it lists."""
        history, _ = yield from super().lookup_plan(chat_id, min_time)
        queue, total = yield Call(ApiRequest("GET", "showMessagesQueue"), parse_message_queue)
        return HistoryPage([*history.entries, *queue], history.offset), total <= len(queue)


CLASSIC = ClassicDialect()


def _card_numbers(send: ContactSend) -> tuple[str, ...]:
    """What a send's cards become on a classic gateway, which sends numbers (``contactId``), not cards (its
    contact ids go as they are): each card's first number (its ``wa_id``, else its phone), once."""
    numbers = []
    for index, card in enumerate(send.cards):
        on_card = card_numbers(card)
        if not on_card:
            raise InvalidInputError(
                f"contacts[{index}]",
                card,
                "the classic gateway sends a contact by its number, and this card has none it can send "
                "(a phone without an extension, or a wa_id)",
            )
        numbers.append(on_card[0])
    return tuple(dict.fromkeys(numbers))


def parse_message_queue(response: ApiResponse) -> tuple[list[dict[str, Any]], int]:
    """The ``first100`` list of a ``showMessagesQueue`` answer, and how many messages the queue holds."""
    payload = checked_payload(response, "showMessagesQueue", has_side_effect=False)
    listed = object_list(payload, "first100", "showMessagesQueue")
    total = payload.get("totalMessages")
    return listed, total if isinstance(total, int) and not isinstance(total, bool) else len(listed)
