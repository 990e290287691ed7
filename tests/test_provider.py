"""Provider discovery: the installed distribution registers itself and its connection type with Airflow."""

from __future__ import annotations

import json
from importlib.metadata import distribution, entry_points
from importlib.resources import files

import jsonschema
import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_2_PLUS

import airflow_provider_chatapi
from airflow_provider_chatapi.hooks.chatapi import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ChatApiHook


def test_entry_point_of_the_installed_distribution() -> None:
    (entry_point,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "airflow-provider-chatapi"
    ]
    info = entry_point.load()()
    assert info["package-name"] == "airflow-provider-chatapi"
    assert info["versions"] == [airflow_provider_chatapi.__version__]
    assert distribution("airflow-provider-chatapi").version == airflow_provider_chatapi.__version__


def test_provider_info_passes_airflows_schema() -> None:
    schema = json.loads((files("airflow") / "provider_info.schema.json").read_text())
    jsonschema.validate(airflow_provider_chatapi.get_provider_info(), schema)


def test_providers_manager_registers_the_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["airflow-provider-chatapi"].version == airflow_provider_chatapi.__version__
    hook = manager.hooks["chatapi"]
    assert hook is not None
    assert (hook.hook_class_name, hook.connection_id_attribute_name, hook.hook_name) == (
        "airflow_provider_chatapi.hooks.chatapi.ChatApiHook",
        "chatapi_conn_id",
        "Chat API (WhatsApp)",
    )


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
    assert set(behaviour["placeholders"]) == {"host", "login", "password", "dialect", "timeout", "max_retries"}


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
