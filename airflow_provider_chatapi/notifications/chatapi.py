"""A notifier that sends a WhatsApp contact card: the on-call owner's card to a support group, say."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import jinja2
from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_provider_chatapi import DEFAULT_CONN_ID, SEND_FIELDS
from airflow_provider_chatapi._protocol.sends import checked_max_retries, checked_timeout
from airflow_provider_chatapi.exceptions import InvalidInputError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

__all__ = ["ChatApiNotifier", "send_chatapi_notification"]


class ChatApiNotifier(BaseNotifier):
    """Send a contact card when a DAG or task callback fires, synchronously or from the triggerer.

    Usable as ``on_failure_callback=ChatApiNotifier(...)`` (sync, :meth:`notify`) and wherever Airflow
    awaits a notifier (async, :meth:`async_notify`), e.g. a deadline alert run by the triggerer.

    :param contact_ids: the contacts to send by number (templated); see ``SendContactOperator``.
    :param contacts: full contact cards instead (templated); see ``SendContactOperator``.
    :param phone: the recipient's phone number (templated); give exactly one of ``phone`` and ``chat_id``.
    :param chat_id: the recipient chat (templated), e.g. a support group ``120363…@g.us``.
    :param quoted_message_id: a message id to reply to (templated).
    :param default_region: where numbers written the national way are read (templated); see
        ``SendContactOperator``.
    :param chatapi_conn_id: the ``chatapi`` connection to send through (templated).
    :param timeout: seconds to wait for the gateway; overrides the connection's ``timeout``.
    :param max_retries: HTTP retries of requests the gateway certainly did not process.
    :param context: the context to render with when the notifier is awaited rather than called (Airflow 3.1+);
        the triggerer passes it to a deadline alert's ``AsyncCallback(ChatApiNotifier, kwargs={...})``.

    A deadline alert's context holds only ``dag_run`` and ``deadline``: a template naming anything else
    (``params``, ``ti``, ...) fails before anything is sent, with an :class:`InvalidInputError` naming the
    field, the missing variable and what the context holds. Where there is no DAG to render with, a missing
    variable fails as it does in a DAG's own templates, rather than rendering as an empty string.

    A callback fires once and has no retries of its own, so no state is kept between calls; the HTTP
    layer still never re-sends a card whose request may have been queued. Airflow logs a failure
    (``Failed to send notification``), as for every notifier; from 3.1 on it also re-raises it.
    """

    template_fields = (*SEND_FIELDS, "chatapi_conn_id")

    def __init__(
        self,
        *,
        contact_ids: Any = None,
        contacts: Any = None,
        phone: str | int | None = None,
        chat_id: str | None = None,
        quoted_message_id: str | None = None,
        default_region: str | None = None,
        chatapi_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | None = None,
        max_retries: int | None = None,
        context: Context | None = None,
    ) -> None:
        super().__init__()  # Airflow before 3.1 takes no context: its notifiers are only ever called
        if context is not None:  # what Airflow 3.1+ renders with, and passes on, when it awaits the notifier
            self.context = context
        self.contact_ids = contact_ids
        self.contacts = contacts
        self.phone = phone
        self.chat_id = chat_id
        self.quoted_message_id = quoted_message_id
        self.default_region = default_region
        self.chatapi_conn_id = chatapi_conn_id
        # Checked when the DAG is parsed, as the operators check them: a notifier only runs once its task or
        # DAG has failed, which is too late to learn that its own options were wrong.
        self.timeout = checked_timeout(timeout)
        self.max_retries = checked_max_retries(max_retries)

    @cached_property
    def hook(self) -> ChatApiHook:
        """The hook, built on first use from the connection id and the notifier's HTTP policy."""
        # Imported here: DAG files import this module on every parse, and the hook pulls in requests and httpx.
        from airflow_provider_chatapi.hooks.chatapi import ChatApiHook

        return ChatApiHook(self.chatapi_conn_id, timeout=self.timeout, max_retries=self.max_retries)

    def get_template_env(self, dag: Any = None) -> jinja2.Environment:
        if hasattr(dag, "get_template_env"):
            return super().get_template_env(dag=dag)
        # No DAG to render with: a deadline alert's callback has none, and `airflow dags test` on Airflow 3.3
        # hands a DAG-level callback the serialized DAG, which has no template environment. Airflow's
        # environment for that case renders a missing variable as "", which would send to the wrong chat or
        # send the wrong card; a DAG's own environment (StrictUndefined) refuses it, and so does this one.
        env = super().get_template_env(dag=None)
        env.undefined = jinja2.StrictUndefined
        return env

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        # Airflow's renderer names the failing field only in a log line, and a deadline alert's failure is read
        # from its callback's output, which holds only the exception: so each field is rendered on its own,
        # and a failure is raised naming that field, the missing variable and what the context holds.
        jinja_env = jinja_env or self.get_template_env(dag=context.get("dag"))
        seen: set[int] = set()
        for field in self.template_fields:
            template = getattr(self, field)
            if not template:  # as Airflow's renderer: None and "" hold nothing to render
                continue
            try:
                setattr(self, field, self.render_template(template, context, jinja_env, seen))
            except jinja2.TemplateError as error:
                problem = f"the template cannot be rendered: {error}"
                if isinstance(error, jinja2.UndefinedError):
                    # The notifier's own arguments are merged into the context too (Airflow's _update_context);
                    # they are not what a DAG author looks for there, so only the variables Airflow gave are listed.
                    given = sorted(name for name in context if name not in self.template_fields)
                    problem += f"; the context holds {', '.join(given) or 'nothing'}"
                raise InvalidInputError(field, template, problem) from error

    def notify(self, context: Context) -> None:
        with self.hook:
            result = self.hook.send_contact(**{name: getattr(self, name) for name in SEND_FIELDS})
        self.log.info("Chat API notification queued as %s", result.id)

    async def async_notify(self, context: Context) -> None:
        try:
            result = await self.hook.asend_contact(**{name: getattr(self, name) for name in SEND_FIELDS})
        finally:
            await self.hook.aclose()
        self.log.info("Chat API notification queued as %s", result.id)


send_chatapi_notification = ChatApiNotifier
"""The notifier under the name Airflow's own providers give theirs (``send_slack_notification``, ...)."""
