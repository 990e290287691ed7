"""A sensor that waits until WhatsApp messages sent through 1msg are delivered (or read)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_chatapi import DEFAULT_CONN_ID, JOB_IDS_XCOM_KEY
from airflow_provider_chatapi._protocol import acks
from airflow_provider_chatapi._protocol.sends import (
    DEFAULT_MAX_IN_FLIGHT,
    checked_flag,
    checked_max_in_flight,
    checked_span,
)
from airflow_provider_chatapi.exceptions import ChatApiError, DeliveryFailedError, InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

__all__ = ["DEFAULT_DELIVERY_TIMEOUT", "MAX_DELIVERY_TIMEOUT", "ChatApiDeliverySensor"]

DEFAULT_DELIVERY_TIMEOUT = 3600.0
"""Seconds a delivery sensor waits by default (Airflow's own sensor default is seven days)."""
MAX_DELIVERY_TIMEOUT = 366 * 86400.0
"""Most seconds a delivery sensor may wait, or wait between polls: a year. Longer is a mistake (milliseconds
given as seconds, say), and far longer overflows Airflow's own conversions, one only when the task defers."""


class ChatApiDeliverySensor(BaseSensorOperator):
    """Wait until messages sent through 1msg reach a phone (``delivered``) or are ``read``, or fail.

    Reads 1msg's delivery acks of each message (its Check ACKs endpoint, ``hookInfo``). States only move
    forward (sent < delivered < read; ``played`` and ``viewed`` count as read), whatever order acks come in.

    :param message_ids: one message id or a list (templated): typically the XCom of
        ``SendContactOperator`` or ``SendContactToManyOperator``.
    :param wait_for: ``"delivered"`` (default; ``read`` satisfies it too) or ``"read"``. WhatsApp reports
        ``read`` only for recipients with read receipts on: for others the wait ends at the deadline.
    :param chatapi_conn_id: the ``chatapi`` connection (templated); a 1msg one.
    :param poke_interval: seconds (or a ``timedelta``) between polls.
    :param timeout: seconds (or a ``timedelta``) to wait in all (default one hour, at most a year); then the
        task fails without retrying, naming the messages still short of ``wait_for``.
    :param deferrable: wait in the triggerer instead of a worker slot (default: ``[operators]
        default_deferrable``); a bool, or the text ``"true"`` / ``"false"``.
    :param max_in_flight: requests in flight at once when polling many messages (1 to 1,000).
    :param fail_on_job_ids: fail the task, before any request, when ``message_ids`` hold 1msg job ids (sends
        1msg took as queued jobs, which have no message id yet; the sending operators list them under the XCom
        key ``chatapi_job_ids``). By default (False) they are not watched: the task log warns, naming them, this
        task lists them under the same XCom key, and the other ids are watched as usual. When every id is a
        job id there is nothing to watch, and the task succeeds at once, returning ``{}``.

    Returns (XCom ``return_value``) each watched message id's state (``"delivered"`` or ``"read"``). A
    ``failed`` ack fails the task without retrying, with a ``DeliveryFailedError`` naming the message, the
    chat it went to (when the ack says), the gateway's reason and, where known, Meta's error code and what it
    means. A classic gateway, which reports acks only by webhook, and a 1msg channel without the endpoint
    fail at once, without retrying. A 429 or 5xx while polling only slows the polls down. While it waits the
    task logs how far the messages got, and its last line sums the wait up, with the job ids not watched.
    """

    template_fields: Sequence[str] = ("message_ids", "chatapi_conn_id")
    ui_color = "#25d366"
    _watch: acks.DeliveryWatch  # set by execute, for poke

    def __init__(
        self,
        *,
        message_ids: Any,
        wait_for: str = acks.DELIVERED,
        chatapi_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float | timedelta = 30.0,
        timeout: float | timedelta = DEFAULT_DELIVERY_TIMEOUT,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        fail_on_job_ids: bool = False,
        **kwargs: Any,
    ) -> None:
        # Checked when the DAG is parsed, before Airflow's own checks, which raise bare errors (a ValueError
        # for a NaN poke_interval, an OverflowError for an infinite one) or none (a poke_interval of True).
        # Both spans as Airflow's sensors take them: seconds, or a timedelta.
        seconds = checked_span(timeout, "timeout", at_most=MAX_DELIVERY_TIMEOUT)
        poke_seconds = checked_span(poke_interval, "poke_interval", at_most=MAX_DELIVERY_TIMEOUT)
        super().__init__(poke_interval=poke_seconds, timeout=seconds, **kwargs)
        self.message_ids = message_ids
        if wait_for not in (acks.DELIVERED, acks.READ):
            raise InvalidInputError("wait_for", wait_for, "must be one of delivered, read")
        self.wait_for = wait_for
        self.chatapi_conn_id = chatapi_conn_id
        self.deferrable = checked_flag(deferrable, "deferrable")  # "false" would defer: any text is truthy
        self.max_in_flight = checked_max_in_flight(max_in_flight)
        self.fail_on_job_ids = checked_flag(fail_on_job_ids, "fail_on_job_ids")
        self.timeout_seconds = float(self.timeout)

    @cached_property
    def hook(self) -> ChatApiHook:
        # Imported here: DAG files import this module on every parse, and the hook pulls in requests and httpx.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(self.chatapi_conn_id)  # ``timeout`` is the whole wait here: the connection's applies

    def execute(self, context: Context) -> Any:
        # Before any request, the task fails on bad ids, on a connection that cannot report delivery, and on
        # any job id with fail_on_job_ids.
        try:
            ids, jobs = self._split_ids(context)
            if jobs and self.fail_on_job_ids:
                raise InvalidInputError(
                    "message_ids",
                    jobs,
                    "these are 1msg job ids (the send was queued as a job, with no message id yet): a job's "
                    "delivery cannot be watched (fail_on_job_ids=True)",
                )
            self.hook.settings.dialect.check_delivery_reports()
        except ChatApiError as error:
            raise AirflowFailException(str(error)) from error
        if jobs:  # a warning, and this task's XCom, where a DAG can act on them
            then = f"watching the other {len(ids)}" if ids else "nothing is left to watch: the task succeeds at once"
            self.log.warning(
                f"{len(jobs)} of {len(jobs) + len(ids)} message ids are 1msg job ids, queued as jobs "
                f"with no message id yet, so their delivery cannot be watched: {', '.join(jobs)}. They are in "
                f"this task's XCom under {JOB_IDS_XCOM_KEY!r}; {then} (fail_on_job_ids=True fails the task instead)."
            )
            context["ti"].xcom_push(key=JOB_IDS_XCOM_KEY, value=jobs)
        if not ids:
            return self.execute_complete(context, {"status": "success", "states": {}})
        self._watch = acks.DeliveryWatch(ids, self.wait_for)
        if self.deferrable:
            from airflow_provider_chatapi.triggers.chatapi import ChatApiDeliveryTrigger

            trigger = ChatApiDeliveryTrigger(
                message_ids=ids,
                wait_for=self.wait_for,
                deadline=time.time() + self.timeout_seconds,
                chatapi_conn_id=self.chatapi_conn_id,
                poke_interval=self.poke_interval,
                max_in_flight=self.max_in_flight,
            )
            # Airflow's own deferral timeout, a minute past the trigger's deadline: only a backstop.
            backstop = timedelta(seconds=self.timeout_seconds + 60)
            self.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)
        try:
            return super().execute(context)
        except AirflowSensorTimeout as timed_out:
            self._sum_up(self._watch.states, jobs)
            raise AirflowSensorTimeout(f"{timed_out}; {self._watch.short_of_goal()}") from timed_out

    def poke(self, context: Context) -> PokeReturnValue:
        event, _ = self._watch.absorb(asyncio.run(self._poll(self._watch.pending())))
        if event is None:
            self.log.info("Waiting for delivery: %s", acks.tally(self._watch.states, self.wait_for))
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self.execute_complete(context, event))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, str]:
        """Where a wait ends, with its last event (a deferred one resumes here, on a worker, with the trigger's):
        the states of a wait that succeeded; any other end fails the task without retrying."""
        # The job ids for the summary, found again as execute found them (the same rendered ids and upstream
        # XCom): the deferral's kwargs would carry them, but dag.test() drops those before Airflow 3.3.
        self._sum_up(event.get("states", {}), self._split_ids(context)[1])
        if event.get("status") == "success":
            return dict(event["states"])
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(f"Gave up after {self.timeout_seconds:.0f} s: {event['error']}")
        if event.get("status") == "failed":
            details: dict[str, Any] = {name: event.get(name) for name in acks.FAILURE_DETAILS}
            raise AirflowFailException(event["error"]) from DeliveryFailedError(**details)
        raise AirflowFailException(event.get("error", f"the wait ended with {event!r}"))

    def _sum_up(self, states: Mapping[str, str | None], job_ids: Sequence[str]) -> None:
        """The wait's last line: how far the messages got, and what was not watched."""
        unwatched = f"; {len(job_ids)} job id{'s' if len(job_ids) > 1 else ''} not watched" if job_ids else ""
        self.log.info("Delivery: %s%s", acks.tally(states, self.wait_for), unwatched)

    def _split_ids(self, context: Context) -> tuple[list[str], list[str]]:
        """``message_ids``, checked, as the ids to watch and the 1msg job ids the upstream sending tasks listed
        (they push them under :data:`JOB_IDS_XCOM_KEY`)."""
        ids = acks.checked_message_ids(self.message_ids)
        ti, upstream = context.get("ti"), sorted(self.upstream_task_ids)
        pulled = ti.xcom_pull(task_ids=upstream, key=JOB_IDS_XCOM_KEY) if ti is not None and upstream else None
        # One value per upstream task that pushed one: a list on Airflow 3, a lazy sequence (no list) on 2.
        listed = {item for value in pulled or () if isinstance(value, list) for item in value if isinstance(item, str)}
        return [i for i in ids if i not in listed], [i for i in ids if i in listed]

    async def _poll(self, message_ids: list[str]) -> list[Any]:
        try:
            return await self.hook.aget_deliveries(message_ids, max_in_flight=self.max_in_flight)
        finally:
            await self.hook.aclose()
