"""Apache Airflow provider for Chat API (1msg and classic gateways): send WhatsApp contact cards from DAGs.

This module is imported by Airflow's provider discovery in every process, so it imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_CONN_ID", "JOB_IDS_XCOM_KEY", "SEND_FIELDS", "__version__", "get_provider_info"]

__version__ = "0.1.0"

DEFAULT_CONN_ID = "chatapi_default"
"""The ``chatapi`` connection the hook, the operators and the notifier use unless told otherwise."""
JOB_IDS_XCOM_KEY = "chatapi_job_ids"
"""Where a sending operator lists which ids it returned are 1msg job ids, so a delivery sensor sets them aside."""
SEND_FIELDS = ("contact_ids", "contacts", "phone", "chat_id", "quoted_message_id", "default_region")
"""The arguments of a single send (``ChatApiHook.send_contact``): what the operator and the notifier template,
with their connection id, and hand to the hook as they rendered."""

_INTEGRATION = "Chat API"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "airflow-provider-chatapi",
        "name": "Chat API (WhatsApp)",
        "description": "Send WhatsApp contact cards through 1msg (the live Chat API) or a classic Chat API gateway.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://github.com/airflow-provider-chatapi/airflow-provider-chatapi#readme",
                "tags": ["service"],
            }
        ],
        **{  # hooks, operators, sensors, triggers: one module each, chatapi.py in the folder of that name
            kind: [{"integration-name": _INTEGRATION, "python-modules": [f"airflow_provider_chatapi.{kind}.chatapi"]}]
            for kind in ("hooks", "operators", "sensors", "triggers")
        },
        "notifications": ["airflow_provider_chatapi.notifications.chatapi.ChatApiNotifier"],
        "connection-types": [
            {
                "connection-type": "chatapi",
                "hook-class-name": "airflow_provider_chatapi.hooks.chatapi.ChatApiHook",
                "hook-name": "Chat API (WhatsApp)",
                # No schema "default": the form pre-fills a field with it and saves it into the connection's
                # extra, where a later change of the hook's default never reaches. The descriptions name them.
                "conn-fields": {
                    "dialect": {
                        "label": "Dialect",
                        "description": (
                            "Empty: chosen by the API URL (1msg for a host on 1msg.io or no host, chatapi for "
                            "any other host). 1msg: the live Chat API service (full contact cards); chatapi: a "
                            "classic, self-hosted gateway (contact ids)."
                        ),
                        # Optional the way Airflow's own providers declare it: "null" in the type, not in the
                        # enum, which the 3.x form would offer as a choice spelled "null".
                        "schema": {"type": ["string", "null"], "enum": ["1msg", "chatapi"]},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "How long to wait to connect, and then for an answer. Default 30.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "default_region": {
                        "label": "Default region",
                        "description": (
                            "Where numbers written the national way, without + and a country code, are read: a "
                            "two-letter country code such as RU or US (8 (495) 123-45-67 in RU is +7 495 123-45-67). "
                            "Empty: such numbers are refused."
                        ),
                        "schema": {"type": ["string", "null"], "pattern": "^[A-Za-z]{2}$"},
                    },
                    "max_retries": {
                        "label": "Retries",
                        "description": (
                            "Retries of a request the gateway certainly did not process (connect failure, "
                            "HTTP 429 or 503). A request that may have queued a message is never retried. "
                            "Default 3."
                        ),
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"host": "API URL", "login": "Instance ID", "password": "API token"},
                    "placeholders": {
                        "host": "https://api.1msg.io/123456 (1msg) or https://gateway.example/instance123456",
                        "login": "123456 (only when the API URL does not end in the instance)",
                        "password": "the instance's token, from the gateway's cabinet",
                        "dialect": "empty: chosen by the API URL",
                        "timeout": "30",
                        "max_retries": "3",
                        "default_region": "RU, US, ... (empty: only international numbers)",
                    },
                },
            }
        ],
    }
