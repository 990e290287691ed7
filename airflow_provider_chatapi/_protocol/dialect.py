"""What a gateway dialect supplies: its addressing, its requests, its answers and its reconciliation.

Two dialects exist, side by side in :mod:`.classic` and :mod:`.onemsg`; :mod:`.connection` picks one per
connection. The hook runs the dialect's plans (a send's through :func:`~.record.send_plan`) and never looks
inside them; nothing above the hook knows which dialect runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_chatapi._protocol.http import (
    ApiRequest,
    Call,
    checked_payload,
    clock_offset,
    object_list,
    quote_gateway,
    snippet,
)
from airflow_provider_chatapi._protocol.reconcile import HistoryPage, earliest_stamp, history_plan, settle
from airflow_provider_chatapi.exceptions import ChatApiError, GatewayError

if TYPE_CHECKING:
    import re
    from collections.abc import Mapping, Sequence

    from airflow_provider_chatapi._protocol.acks import Delivery
    from airflow_provider_chatapi._protocol.http import ApiResponse, Plan
    from airflow_provider_chatapi._protocol.reconcile import CardShape, LostSend, Verdicts
    from airflow_provider_chatapi._protocol.sends import ContactSend, SendResult

__all__ = ["Dialect", "parse_message_history"]


class Dialect(ABC):
    """One gateway protocol. Subclasses are stateless; each has one instance."""

    name: ClassVar[str]
    """What the connection's ``dialect`` extra says to choose this one."""
    default_base_url: ClassVar[str]
    """The service's own address, for a connection with no host."""
    instance_in_path: ClassVar[re.Pattern[str]]
    """An instance id at the end of an API URL's path; group 1 is the number."""

    def __repr__(self) -> str:
        return f"<{self.name} dialect>"

    instance_path: ClassVar[str]
    """The path segment that addresses an instance, ``{}`` for its number (``/instance{}`` or ``/{}``)."""

    # ---- sending ------------------------------------------------------------------------------

    @abstractmethod
    def send_request(self, send: ContactSend) -> ApiRequest:
        """The request for ``send``; raises ``InvalidInputError`` for what this dialect cannot carry."""

    @abstractmethod
    def parse_send(self, response: ApiResponse) -> SendResult:
        """The queued message, or the error that says whether it may have been queued."""

    # ---- the instance's status ----------------------------------------------------------------

    status_params: ClassVar[Mapping[str, str]] = {}
    """What the status probe sends, so that it has no side effect."""
    status_key: ClassVar[str]
    """The field of the status answer that holds the status word."""
    statuses: ClassVar[Mapping[str, str]]
    """Each known status word and what it means to the instance's owner."""
    healthy: ClassVar[frozenset[str]]
    """The status words of an instance that delivers messages."""
    status_noun: ClassVar[str]
    """What the gateway calls the status (``account status``), as Test connection names it."""

    def status_request(self) -> ApiRequest:
        """A probe with no side effect."""
        return ApiRequest("GET", "status", params=self.status_params)

    def parse_status(self, response: ApiResponse) -> str:
        """The status word the probe answered."""
        status = checked_payload(response, "status", has_side_effect=False).get(self.status_key)
        if not isinstance(status, str) or not status:
            said = f"answered without {self.status_key!r}: {snippet(response)}"
            raise GatewayError("status", said, status_code=response.status_code)
        return response.shown(status)

    def describe_status(self, status: str) -> tuple[bool, str]:
        """Whether an instance in ``status`` delivers messages, and what the status means to its owner."""
        meaning = self.statuses.get(status, f"a {self.status_noun} this provider does not know")
        return status in self.healthy, f"Token accepted; {self.status_noun} {status!r}: {meaning}."

    def status_plan(self) -> Plan[str]:
        """Read the instance's status."""
        return (yield Call(self.status_request(), self.parse_status))

    # ---- delivery -------------------------------------------------------------------------------

    def check_delivery_reports(self) -> None:
        """Raise ``DeliveryReportUnavailableError`` if this dialect can never report delivery by message id."""
        return  # it can: whether a given channel does is known only once it is asked

    @abstractmethod
    def delivery_plan(self, message_id: str) -> Plan[Delivery]:
        """How far the message got, from the gateway's acks.

        Raises ``DeliveryReportUnavailableError`` where the dialect or the channel cannot say.
        """

    # ---- reconciliation -----------------------------------------------------------------------

    @abstractmethod
    def card_shape(self, send: ContactSend) -> CardShape:
        """How the message ``send`` makes appears in the history: its ``type`` values and its cards."""

    def lookup_plan(self, chat_id: str | None, min_time: int) -> Plan[tuple[HistoryPage, bool]]:
        """Every card the gateway queued or sent since ``min_time`` (the gateway's clock), to one chat or to
        all; and whether that is surely all of them. Raises a ``GatewayError`` when the gateway cannot say.

        Here, the history alone: complete, since a card is in it once accepted."""
        return (yield from history_plan(chat_id, min_time, parse_message_history)), True

    def reconcile_plan(self, lost: Sequence[LostSend], *, owners: Mapping[str, str], shared: bool) -> Plan[Verdicts]:
        """What became of each lost send, from one look at the gateway since the earliest intent (one
        chat's history when they share a chat, all chats' otherwise); see :func:`~.reconcile.settle`."""
        chats = {item.send.chat_id for item in lost}
        # An intent on our clock is placed on the gateway's first: a gateway minutes behind stamps the card
        # before any margin around our time would reach.
        offset = (yield from self.clock_plan()) if not all(item.intent.tied for item in lost) else None
        since = min(earliest_stamp(item.intent, offset) for item in lost)
        page, complete = yield from self.lookup_plan(chats.pop() if len(chats) == 1 else None, since)
        return settle(
            lost,
            page.entries,
            offset=page.offset if page.offset is not None else offset,
            card_shape=self.card_shape,
            owners=owners,
            shared=shared,
            complete=complete,
        )

    def clock_plan(self) -> Plan[float | None]:
        """The gateway's clock (seconds to add to ours), from the ``Date`` of a status probe; None if the
        probe fails or its answer has none: intents are then placed on our clock."""
        try:
            return (yield Call(self.status_request(), clock_offset))
        except ChatApiError:
            return None


def parse_message_history(response: ApiResponse) -> HistoryPage:
    """The ``messages`` of a history answer, and the gateway's clock; a ``notice`` instead (1msg, with
    history storage off) means "cannot tell"."""
    payload = checked_payload(response, "messages", has_side_effect=False)
    if "messages" not in payload and payload.get("notice"):
        raise GatewayError(
            "messages",
            f"the channel keeps no message history ({quote_gateway(str(payload['notice']), response)}), "
            "so it cannot show whether the card arrived",
            status_code=response.status_code,
        )
    return HistoryPage(object_list(payload, "messages", "messages"), clock_offset(response))
