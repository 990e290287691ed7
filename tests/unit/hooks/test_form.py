"""The connection form: read from provider info on Airflow 3.2+, built from the hook's WTForms fields before
(2.11's and 3.0-3.1's UIs), the same labels either way, and refusing what the hook would. On every release
a new form is empty (a saved connection leaves the defaults to the hook) and offers no "null" dialect."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_2_PLUS

from airflow_provider_chatapi import get_provider_info
from airflow_provider_chatapi.hooks.chatapi import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ChatApiHook

DIALECTS = ["1msg", "chatapi"]


@pytest.mark.skipif(not AIRFLOW_V_3_2_PLUS, reason="conn-fields in provider info arrived in Airflow 3.2")
def test_connection_form_from_provider_info() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert {"extra__chatapi__dialect", "extra__chatapi__timeout", "extra__chatapi__max_retries"} <= set(widgets)
    behaviour = manager.field_behaviours["chatapi"]
    assert behaviour["relabeling"] == {"host": "API URL", "login": "Instance ID", "password": "API token"}
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "extra"}
    assert behaviour["placeholders"]["extra__chatapi__timeout"] == "30"


def test_form_before_3_2_hides_extra_and_labels_every_field() -> None:
    behaviour = ChatApiHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "API URL", "login": "Instance ID", "password": "API token"}
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "extra"}
    assert behaviour["placeholders"]["max_retries"] == "3"
    assert set(behaviour["placeholders"]) == {
        "host",
        "login",
        "password",
        "dialect",
        "timeout",
        "max_retries",
        "default_region",
    }


@pytest.mark.skipif(AIRFLOW_V_3_2_PLUS, reason="Airflow 3.2+ reads the form from provider info")
def test_providers_manager_before_3_2_builds_the_form_from_the_hook() -> None:
    pytest.importorskip("flask_appbuilder")
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert {name for name in widgets if name.startswith("extra__chatapi__")} == {
        "extra__chatapi__dialect",
        "extra__chatapi__timeout",
        "extra__chatapi__max_retries",
        "extra__chatapi__default_region",
    }
    assert widgets["extra__chatapi__timeout"].field.args[0] == "Timeout (seconds)"
    behaviour = manager.field_behaviours["chatapi"]
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "extra"}
    assert behaviour["placeholders"]["extra__chatapi__timeout"] == "30"


@pytest.mark.parametrize(
    ("typed", "errors"),
    [
        ({}, {}),
        ({"dialect": "1msg", "timeout": "2.5", "max_retries": "0"}, {}),
        ({"dialect": "chatapi", "timeout": "", "max_retries": ""}, {}),
        ({"default_region": "ru"}, {}),
        ({"default_region": "Russia"}, {"default_region": "Default region: Where numbers written the national way"}),
        (
            {"dialect": "whatsapp", "timeout": "soon", "max_retries": "-1"},
            {
                "dialect": "must be one of: 1msg, chatapi",
                "timeout": "Timeout (seconds) must be a number of seconds",
                "max_retries": "at least 0",
            },
        ),
    ],
)
def test_form_before_3_2_refuses_what_the_hook_would(typed: dict[str, str], errors: dict[str, str]) -> None:
    wtforms = pytest.importorskip("wtforms")
    pytest.importorskip("flask_appbuilder")
    from werkzeug.datastructures import MultiDict

    form_class = type("ChatApiForm", (wtforms.Form,), ChatApiHook.get_connection_form_widgets())
    form = form_class(formdata=MultiDict(typed))

    assert form.validate() == (not errors)
    assert set(form.errors) == set(errors)
    for field, text in errors.items():
        assert text in form.errors[field][0]


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 2's form is the hook's WTForms form, tested above")
def test_airflow_3_ui_gets_an_empty_form_without_a_null_dialect() -> None:
    """What the 3.x UI's form is drawn from (``/ui/connections/hook_meta``): from the hook's WTForms fields
    on 3.0/3.1, from provider info on 3.2+. A field's ``value`` is what a new form holds and what saving it
    untouched writes into the extra; each ``enum`` item is a choice of the select."""
    if not AIRFLOW_V_3_2_PLUS:
        pytest.importorskip("wtforms")
    services = pytest.importorskip("airflow.api_fastapi.core_api.services.ui.connections")

    (meta,) = [hook for hook in services.HookMetaService.hook_meta_data() if hook.connection_type == "chatapi"]

    fields = meta.extra_fields
    assert {name: field["value"] for name, field in fields.items()} == dict.fromkeys(
        ["dialect", "timeout", "default_region", "max_retries"]
    )
    assert fields["dialect"]["schema"]["enum"] == DIALECTS
    assert fields["dialect"]["schema"]["type"] == ["string", "null"]
    assert fields["max_retries"]["schema"]["type"] == ["integer", "null"]
    assert meta.standard_fields.password.title == "API token"
    assert meta.standard_fields.port.hidden


def test_a_new_form_before_3_2_is_empty() -> None:
    """What 2.11's (and 3.0/3.1's FAB) form shows in each field of a new connection, and so submits when left
    alone: nothing, where Timeout showed 30 and Retries 3 and wrote them into every saved connection."""
    wtforms = pytest.importorskip("wtforms")
    pytest.importorskip("flask_appbuilder")

    form = type("ChatApiForm", (wtforms.Form,), ChatApiHook.get_connection_form_widgets())()

    assert {field.name: field._value() for field in form} == dict.fromkeys(
        ["dialect", "timeout", "default_region", "max_retries"], ""
    )


def test_the_form_names_the_defaults_it_leaves_to_the_hook() -> None:
    """No field declares a default, to be written into saved connections; each field's description and
    placeholder say the hook's own, and the optional dialect is optional by its type, not by a null choice."""
    (connection_type,) = get_provider_info()["connection-types"]
    fields: dict[str, Any] = connection_type["conn-fields"]
    assert [name for name, field in fields.items() if "default" in field["schema"]] == []
    assert fields["dialect"]["schema"] == {"type": ["string", "null"], "enum": DIALECTS}
    assert fields["dialect"]["description"].startswith("Empty: chosen by the API URL")
    placeholders = connection_type["ui-field-behaviour"]["placeholders"]
    for name, default in {"timeout": DEFAULT_TIMEOUT, "max_retries": DEFAULT_MAX_RETRIES}.items():
        assert f"Default {default:g}." in fields[name]["description"]
        assert placeholders[name] == f"{default:g}"
