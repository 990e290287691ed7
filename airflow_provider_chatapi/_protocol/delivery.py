"""The one plan of a send: the request, and around it the ledger that keeps a card from going out twice.

Every send crosses :func:`send_plan`: a user's ``hook.send_contact()``, the notifier, the operator and
each recipient of a fan-out. Without a ledger it is the request and nothing more. With one (the
operators'), :func:`prepare_plan` first settles what earlier tries left unknown, from one look at the
gateway, and each send asks the ledger whether an earlier try queued its card; the ledger records the
intents before the requests and the outcomes after them. A single send is a batch of one
(:func:`recorded_send_plan`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_chatapi._protocol.plans import Call
from airflow_provider_chatapi._protocol.reconcile import CANNOT_TELL, LostSend, Verdicts, first_few
from airflow_provider_chatapi._protocol.sends import SendResult
from airflow_provider_chatapi.exceptions import DeliveryUnknownError, GatewayError, NotSentError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_chatapi._protocol.dialect import Dialect
    from airflow_provider_chatapi._protocol.ledger import Ledger
    from airflow_provider_chatapi._protocol.plans import Plan
    from airflow_provider_chatapi._protocol.sends import ContactSend

__all__ = ["Log", "prepare_plan", "reconcile_plan", "recorded_send_plan", "send_plan"]


class Log(Protocol):
    """What :func:`send_plan` needs of a logger (a stdlib or an Airflow logger)."""

    def debug(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def info(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, message: Any, /, *args: Any, **kwargs: Any) -> Any: ...


def send_plan(send: ContactSend, *, dialect: Dialect, ledger: Ledger | None, log: Log) -> Plan[SendResult]:
    """Send the card, unless the ledger or the gateway shows that an earlier try did; return what was queued.

    When the gateway cannot tell whether an earlier card arrived, this fails with ``DeliveryUnknownError``
    (the next try asks again), unless the ledger's ``at_least_once`` says to send anyway.
    """
    request = dialect.send_request(send)  # what the dialect cannot carry fails before any record or request
    record = None
    if ledger is not None:
        earlier = _earlier_card(send, ledger=ledger, log=log)
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
    except DeliveryUnknownError:
        if ledger is not None and record is not None and record.intent is not None and not record.intent.tied:
            # Placed on the gateway's clock now, through this worker's own clock: a retry on a worker whose
            # clock differs still looks for the card from the right second.
            tied = record.intent.tied_by((yield from dialect.clock_plan()))
            if tied is not None:
                ledger.record(replace(record, intent=tied))
        raise
    if ledger is not None and record is not None:
        ledger.record(record.sent(result.id))
    if result.job_id is not None:
        log.warning("The gateway took the card as job %s: queued, with no message id yet", result.job_id)
    else:  # at DEBUG: a caller of the hook has the result; the operators log it for the task log
        log.debug("Chat API queued message %s (%s)", result.id, result.message or "no message")
    return result


def _earlier_card(send: ContactSend, *, ledger: Ledger, log: Log) -> str | None:
    """The id of the card an earlier try of ``send`` queued (on record, or found by :func:`prepare_plan`);
    None to send."""
    prior = ledger.recorded(send)
    if prior is None or prior.message_id is None:
        return None
    # A batch's line per card goes to DEBUG: its reconciliation, and its summary, said it once for all.
    say = log.debug if ledger.shared else log.info
    say("An earlier try queued this card as %s; not sending it again", prior.message_id)
    return prior.message_id


def recorded_send_plan(send: ContactSend, *, dialect: Dialect, ledger: Ledger, log: Log) -> Plan[SendResult]:
    """:func:`send_plan` with a ledger: the batch of one, prepared, and recorded before and after its request."""
    dialect.check([send])  # what the dialect cannot carry fails before any record or request
    yield from prepare_plan([send], dialect=dialect, ledger=ledger, log=log)
    ((start, stop),) = ledger.waves()
    ledger.before_wave(start, stop)
    try:
        return (yield from send_plan(send, dialect=dialect, ledger=ledger, log=log))
    finally:
        ledger.after_wave(start, stop)


def prepare_plan(sends: Sequence[ContactSend], *, dialect: Dialect, ledger: Ledger, log: Log) -> Plan[None]:
    """Before a try's first send: settle every send an earlier try lost, in one look at the gateway; or,
    with none lost, read the gateway's clock, on which the try's intents are then recorded (so that a
    retry on another worker, whose clock may differ, still places them right). A lone send skips that
    read: its intent is placed on the gateway's clock only if its answer is lost (:func:`send_plan`), one
    request then rather than one on every send."""
    lost = ledger.prepare(sends)
    if lost:
        yield from reconcile_plan(lost, dialect=dialect, ledger=ledger, log=log)
    elif len(sends) > 1:
        ledger.tie((yield from dialect.clock_plan()))


def reconcile_plan(lost: Sequence[LostSend], *, dialect: Dialect, ledger: Ledger, log: Log) -> Plan[None]:
    """Ask the gateway what became of the lost sends, note it in the ledger, and say so in a line or two.

    When the gateway cannot tell, a send fails rather than risk a second card, unless the ledger's
    ``at_least_once`` says to send it again.
    """
    try:
        verdicts = yield from dialect.reconcile_plan(lost, owners=ledger.owners, shared=ledger.shared)
    except GatewayError as error:
        reason = f"asking the gateway failed: {error}"
        verdicts = Verdicts(unknown={item.send.chat_id: reason for item in lost})
    if verdicts.unknown and ledger.at_least_once:
        log.warning(
            "Could not tell whether %d earlier card(s) arrived (%s); at_least_once: sending them again",
            len(verdicts.unknown),
            _listed(verdicts.unknown),
        )
        verdicts.absent.update(verdicts.unknown)
        verdicts.unknown.clear()
    ledger.settle(verdicts)
    if len(lost) == 1:
        _say_one(log, verdicts)
        return
    log.info(
        "Earlier tries' outcomes were unknown for %d cards: %d found at the gateway (not sent again), %d not there "
        "(sending them), %d cannot tell",
        len(lost),
        len(verdicts.found),
        len(verdicts.absent),
        len(verdicts.unknown),
    )
    if verdicts.unknown:
        log.warning("Cannot tell whether these cards arrived, so none is sent again: %s", _listed(verdicts.unknown))


def _say_one(log: Log, verdicts: Verdicts) -> None:
    for found in verdicts.found.values():
        log.info("An earlier try's outcome was unknown, but the gateway has its card: %s", found)
    if verdicts.absent:
        log.warning("An earlier try's outcome was unknown, and the gateway shows no such card; sending it")
    for reason in verdicts.unknown.values():
        log.warning("%s: %s", CANNOT_TELL.capitalize(), reason)


def _listed(reasons: Mapping[str, str]) -> str:
    return first_few([f"{chat}: {reason}" for chat, reason in reasons.items()], separator="; ")
