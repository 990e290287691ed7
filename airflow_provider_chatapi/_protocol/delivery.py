"""The one plan of a send: the request, and around it the ledger that keeps a card from going out twice.

Every send crosses :func:`send_plan`: a user's ``hook.send_contact()``, the notifier, the operator and
each recipient of a fan-out. Without a ledger it is the request and nothing more. With one (the
operators', on Airflow 3.3+), it first asks the ledger and, after a try whose answer was lost, the
gateway, whether an earlier try queued this card; it records the intent before the POST and the outcome
after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_chatapi._protocol.plans import Call
from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import DeliveryUnknownError, GatewayError, NotSentError

if TYPE_CHECKING:
    from airflow_provider_chatapi._protocol.dialect import Dialect
    from airflow_provider_chatapi._protocol.http import ApiRequest
    from airflow_provider_chatapi._protocol.ledger import Ledger
    from airflow_provider_chatapi._protocol.plans import Plan
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["Log", "send_plan"]


class Log(Protocol):
    """What :func:`send_plan` needs of a logger (a stdlib or an Airflow logger)."""

    def debug(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def info(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...


def send_plan(send: ContactSend, *, dialect: Dialect, ledger: Ledger | None, log: Log) -> Plan[SendResult]:
    """Send the card, unless the ledger or the gateway shows that an earlier try did; return what was queued.

    When the gateway cannot be asked whether an earlier card arrived, the error propagates (the next try
    asks again), unless the ledger's ``at_least_once`` says to send anyway.
    """
    request = dialect.send_request(send)  # what the dialect cannot carry fails before any record or request
    record = None
    if ledger is not None:
        earlier = yield from _earlier_card(send, request, dialect=dialect, ledger=ledger, log=log)
        if earlier is not None:
            return SendResult(
                id=earlier, sent=True, message="queued by an earlier try", queue_number=None, earlier_try=True
            )
        record = ledger.record_intent(send)
    try:
        result: SendResult = yield Call(request, dialect.parse_send)
    except NotSentError:
        if ledger is not None and record is not None:
            ledger.record(record.nothing_queued())  # the next try sends at once, with nothing to look up
        raise
    if ledger is not None and record is not None:
        ledger.record(record.sent(result.id))
    if result.job_id is not None:
        log.warning("The gateway took the card as job %s: queued, with no message id yet", result.job_id)
    else:  # at DEBUG: a caller of the hook has the result; the operators log it for the task log
        log.debug("Chat API queued message %s (%s)", result.id, result.message or "no message")
    return result


def _earlier_card(
    send: ContactSend, request: ApiRequest, *, dialect: Dialect, ledger: Ledger, log: Log
) -> Plan[str | None]:
    """The id of the card an earlier try of ``send`` queued, from the ledger or the gateway; None to send."""
    prior = ledger.recorded(send)
    if prior is None:
        return None
    if prior.message_id:
        log.info("An earlier try queued this card as %s; not sending it again", prior.message_id)
        return prior.message_id
    try:
        found = yield from dialect.find_card_plan(
            send, since=prior.attempted_at, claimed=ledger.claimed(send), shared=ledger.shared
        )
    except GatewayError as error:
        if not ledger.at_least_once:
            raise DeliveryUnknownError(
                request.endpoint,
                f"an earlier try's answer was lost, and asking the gateway about it failed: {error}",
            ) from error
        log.warning("Could not ask the gateway whether the earlier card arrived; at_least_once: sending")
        return None
    if found:
        log.info("An earlier try's answer was lost, but the gateway has its card: %s", found)
        ledger.record(prior.sent(found))
        return found
    log.warning("An earlier try's answer was lost and the gateway shows no such card; sending again")
    return None
