"""The stand-in's ``messages`` answer: its history, filtered and paged as the query asks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi.testing._checks import history_flag

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_chatapi.testing._records import QueuedMessage

__all__ = ["history_page"]

_HISTORY_PAGE = 100
"""``messages``' default ``limit`` (both contracts: "Default 100")."""


def history_page(delivered: Sequence[QueuedMessage], query: Mapping[str, str], instance_id: str) -> dict[str, Any]:
    """``messages``' answer: the ``delivered`` messages (oldest first) that the query (checked before) asks for.

    The parameters, as 1msg's 2.39.0 contract (``swagger.waba.json``, its ``messagesList`` parameters)
    and classic chat-api's documentation describe them; where they are silent the choice is noted:

    - ``chatId``: one chat's messages; ``min_time``/``max_time``: sent in that span (unix seconds, both
      ends included: the contract says "after" and "before" without saying whether they are strict);
    - ``msgId`` ("Message ID"): the message of that id only (a filter, like the others: the contract
      says no more);
    - ``lastMessageNumber`` ("The lastMessageNumber parameter from the last response"): the messages
      numbered above it, the *oldest* ``limit`` of them, so that a client passing back each answer's
      ``lastMessageNumber`` reads every message once, in order;
    - ``last`` (a flag: "Displays the last messages. If this parameter is passed, then
      lastMessageNumber is ignored"): the *newest* ``limit`` messages; without ``lastMessageNumber``
      the page is the newest too;
    - ``limit`` ("Default 100. With value 0 returns all messages").

    The answer's ``lastMessageNumber`` is what to pass back next time: after a ``lastMessageNumber``,
    the number of the last message listed (or the one given, when none was); otherwise the newest
    message's number.
    """
    chat_id, message_id = query.get("chatId"), query.get("msgId")
    min_time = int(query.get("min_time") or 0)
    max_time = int(query.get("max_time") or 2**62)
    after = (
        None if history_flag(query.get("last")) or "lastMessageNumber" not in query else int(query["lastMessageNumber"])
    )
    matching = [
        m
        for m in delivered
        if (chat_id is None or m.chat_id == chat_id)
        and (message_id is None or m.id == message_id)
        and min_time <= m.time <= max_time
        and (after is None or m.message_number > after)
    ]
    limit = int(query.get("limit") or _HISTORY_PAGE) or len(matching)  # 0: every message
    if after is not None:
        page = matching[:limit]
        last_number = page[-1].message_number if page else after
    else:
        page = matching[-limit:]  # an empty list's [-0:] is empty too
        last_number = delivered[-1].message_number if delivered else 0
    return {
        "messages": [
            {
                "id": message.id,
                "body": message.vcards,
                "type": message.type,
                "senderName": "stand-in",
                "fromMe": True,
                "author": f"{instance_id}@c.us",
                "time": message.time,
                "chatId": message.chat_id,
                "messageNumber": message.message_number,
            }
            for message in page
        ],
        "lastMessageNumber": last_number,
    }
