"""The connection form: read from provider info on Airflow 3.2+, built from the hook's WTForms fields before
(2.11's and 3.0-3.1's UIs), the same labels either way, and refusing what the hook would."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS

from airflow_provider_chatapi.hooks.chatapi import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ChatApiHook


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
    assert widgets["extra__chatapi__timeout"].field["value"] == DEFAULT_TIMEOUT
    assert widgets["extra__chatapi__max_retries"].field["value"] == DEFAULT_MAX_RETRIES


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


@pytest.mark.skipif(AIRFLOW_V_3_2_PLUS, reason="Airflow 3.2+ reads the form from provider info")
def test_airflow_3_0_and_3_1_ui_reads_the_hooks_form() -> None:
    pytest.importorskip("wtforms")
    services = pytest.importorskip("airflow.api_fastapi.core_api.services.ui.connections")

    (meta,) = [hook for hook in services.HookMetaService.hook_meta_data() if hook.connection_type == "chatapi"]

    fields = meta.extra_fields
    assert fields["dialect"]["schema"]["enum"] == ["1msg", "chatapi"]
    assert fields["timeout"]["value"] == DEFAULT_TIMEOUT
    assert fields["max_retries"]["schema"]["type"] == ["integer", "null"]
    assert fields["max_retries"]["value"] == DEFAULT_MAX_RETRIES
    assert meta.standard_fields.password.title == "API token"
    assert meta.standard_fields.port.hidden
