"""The ``chatapi`` connection form, as provider info declares it and as Airflow before 3.2 builds it, and
what its Test connection button says when the probe fails.

Airflow 3.2+ reads the form (``conn-fields``, ``ui-field-behaviour``) from provider info. Airflow 2.11 to
3.1 ask the hook instead, for WTForms fields (``get_connection_form_widgets()``) and a behaviour dict
(``get_ui_field_behaviour()``). Both are derived here from provider info, so a label, a placeholder or a
field is written once. WTForms and Flask-AppBuilder come with Airflow 2's web server (and the FAB provider
on 3.0/3.1); they are imported only when a form is built.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_chatapi import get_provider_info
from airflow_provider_chatapi.exceptions import (
    AuthenticationError,
    ChatApiError,
    ConnectionConfigError,
    GatewayError,
    NotSentError,
)

__all__ = ["field_label", "legacy_field_behaviour", "legacy_form_widgets", "probe_failure"]

_NUMBER = r"^\s*\d+(\.\d*)?\s*$"


def _connection_type() -> dict[str, Any]:
    (connection_type,) = get_provider_info()["connection-types"]
    return connection_type  # type: ignore[no-any-return]


def field_label(setting: str) -> str:
    """What the form calls a setting: ``password`` is "API token", ``extra 'timeout'`` is "Timeout (seconds)"."""
    connection_type = _connection_type()
    extra = setting.removeprefix("extra ").strip("'")
    if extra in connection_type["conn-fields"]:
        return str(connection_type["conn-fields"][extra]["label"])
    return str(connection_type["ui-field-behaviour"]["relabeling"].get(setting, setting))


def legacy_field_behaviour() -> dict[str, Any]:
    """``get_ui_field_behaviour()``: provider info's ``ui-field-behaviour`` in the hook method's spelling."""
    # hidden-fields becomes hidden_fields; provider info is built anew on each call, so nothing is shared.
    return {name.replace("-", "_"): value for name, value in _connection_type()["ui-field-behaviour"].items()}


def legacy_form_widgets() -> dict[str, Any]:
    """``get_connection_form_widgets()``: a WTForms field for each of provider info's ``conn-fields``.

    Only the field classes every release accepts are used (3.0/3.1 drop a hook's whole form for any
    other): ``IntegerField`` for whole numbers, ``StringField`` for the rest, with validators carrying the
    schema's rules so the form refuses what the hook would. No field has a default, as in provider info: a
    new form is empty, and saving it leaves the hook's defaults to the hook.
    """
    # Imported by these names, which Airflow 3.0/3.1 patch with stand-ins to read the form without
    # Flask-AppBuilder (``any_of`` is how they learn a field's choices).
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from wtforms import IntegerField, StringField
    from wtforms.validators import NumberRange, Optional, Regexp, any_of

    widgets: dict[str, Any] = {}
    for name, field in _connection_type()["conn-fields"].items():
        schema = field["schema"]
        validators: list[Any] = [Optional()]
        field_class: Any = StringField
        if "integer" in schema["type"]:  # each type is a list: the field's, and "null"
            field_class = IntegerField
            validators.append(NumberRange(min=schema.get("minimum")))
        elif "number" in schema["type"]:
            validators.append(Regexp(_NUMBER, message=f"{field['label']} must be a number of seconds, e.g. 30"))
        elif "pattern" in schema:
            validators.append(Regexp(schema["pattern"], message=f"{field['label']}: {field['description']}"))
        elif "enum" in schema:
            validators.append(any_of(schema["enum"]))  # Airflow 3.0/3.1's stand-in takes the choices only
        widgets[name] = field_class(
            field["label"], description=field["description"], validators=validators, widget=BS3TextFieldWidget()
        )
    return widgets


def probe_failure(error: ChatApiError) -> str:
    """What Test connection says when the probe fails: the form field to fix, or what the gateway said and
    what to check (never what a send's failure would mean for a message)."""
    if isinstance(error, ConnectionConfigError):
        return f"{field_label(error.setting)}: {error.problem}"
    if not isinstance(error, GatewayError):
        return str(error)
    answer = f"HTTP {error.status_code}" if error.status_code is not None else "no answer"
    if isinstance(error, AuthenticationError):
        hint = "check the API token (and, on 1msg, that the channel may use the API)"
    elif isinstance(error, NotSentError) and error.transient:
        hint = "the gateway is busy or unreachable; check the API URL, or try again later"
    elif error.status_code == 404:
        hint = "no such instance at this address: check the API URL, the Instance ID and the Dialect"
    else:
        hint = "check the API URL and the Dialect"
    return f"The gateway's status probe failed ({answer}): {error.gateway_message}. {hint[0].upper()}{hint[1:]}."
