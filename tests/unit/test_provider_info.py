"""Provider discovery: the installed distribution registers itself and its connection type with Airflow."""

from __future__ import annotations

import json
from importlib.metadata import distribution, entry_points
from importlib.resources import files

import jsonschema

import airflow_provider_chatapi


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
