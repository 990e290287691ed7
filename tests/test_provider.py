"""Provider discovery: the installed distribution registers itself and its connection type with Airflow."""

from __future__ import annotations

import json
from importlib.metadata import distribution, entry_points
from importlib.resources import files

import jsonschema
import pytest
from packaging.version import Version

import airflow_provider_chatapi
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.protocol import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT

AIRFLOW_VERSION = Version(distribution("apache-airflow-core").version)


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


@pytest.mark.skipif(Version("3.2") > AIRFLOW_VERSION, reason="conn-fields in provider info arrived in Airflow 3.2")
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


def test_form_for_airflow_before_3_2_keeps_extra_visible() -> None:
    behaviour = ChatApiHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "API URL", "login": "Instance ID", "password": "API token"}
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
    assert set(behaviour["placeholders"]) == {"host", "login", "password"}
