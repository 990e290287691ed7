"""A connection's fields become the gateway's settings: the API URL in every form, the dialect, extras,
and every bad field named with its connection; the token never shown."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from airflow_provider_chatapi._protocol.connection import settings_from_connection
from airflow_provider_chatapi.exceptions import ConnectionConfigError
from airflow_provider_chatapi.hooks.chatapi import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from tests.helpers import TOKEN


@pytest.mark.parametrize(
    ("host", "login", "port", "api_url"),
    [
        ("https://api.chat-api.com/instance123456", None, None, "https://api.chat-api.com/instance123456"),
        ("https://api.chat-api.com/instance123456/", "", None, "https://api.chat-api.com/instance123456"),
        ("https://api.chat-api.com", "123456", None, "https://api.chat-api.com/instance123456"),
        ("https://api.chat-api.com/", "instance123456", None, "https://api.chat-api.com/instance123456"),
        ("https://eu12.chat-api.com/instance7", "7", None, "https://eu12.chat-api.com/instance7"),
        ("api.chat-api.com/instance123456", None, None, "https://api.chat-api.com/instance123456"),
        ("http://127.0.0.1:8080/instance1", None, None, "http://127.0.0.1:8080/instance1"),
        ("http://127.0.0.1", "1", 8080, "http://127.0.0.1:8080/instance1"),
        ("http://127.0.0.1:9090", "1", 8080, "http://127.0.0.1:9090/instance1"),
        (None, "123456", None, "https://api.1msg.io/123456"),  # no host: 1msg, the live service
        ("  ", "instance123456", None, "https://api.1msg.io/123456"),
    ],
)
def test_api_url_forms(host: str | None, login: str | None, port: int | None, api_url: str) -> None:
    settings = settings_from_connection(conn_id="c", host=host, login=login, password="t0ken1", port=port)
    assert settings.api_url == api_url


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"password": None}, "connection 'c' password", "API token is missing"),
        ({"password": "  "}, "connection 'c' password", "API token is missing"),
        ({"host": "ftp://api.chat-api.com"}, "connection 'c' host", "https:// or http://"),
        ({"host": "https://"}, "connection 'c' host", "no host name"),
        ({"host": "https://api.chat-api.com:99999"}, "connection 'c' host", "port"),
        ({"host": "https://api.chat-api.com/instance1#x"}, "connection 'c' host", "must not carry"),
        ({"login": "abc"}, "connection 'c' login", "instance id is a number"),
        ({"login": None}, "connection 'c' login", "instance id is missing"),
        ({"login": " ", "host": "https://api.1msg.io/"}, "connection 'c' login", "instance id is missing"),
        ({"login": None, "host": "http://gateway.internal:8080"}, "connection 'c' login", "instance id is missing"),
        ({"login": None, "extra": {"dialect": "chatapi"}}, "connection 'c' login", "instance id is missing"),
        ({"extra": {"dialect": "whatsapp"}}, "connection 'c' extra 'dialect'", "'chatapi' .* or '1msg'"),
        # Issue 23: the undocumented aliases are gone; a connection spelling one is told the two names.
        ({"extra": {"dialect": "onemsg"}}, "connection 'c' extra 'dialect'", "'chatapi' .* or '1msg'"),
        ({"extra": {"dialect": "classic"}}, "connection 'c' extra 'dialect'", "'chatapi' .* or '1msg'"),
        ({"host": "https://api.chat-api.com/instance1", "login": "2"}, "connection 'c' login", "differs"),
        ({"extra": {"timeout": "soon"}}, "connection 'c' extra 'timeout'", "float"),
        ({"extra": {"timeout": 0}}, "connection 'c' extra 'timeout'", "at least"),
        ({"extra": {"max_retries": -1}}, "connection 'c' extra 'max_retries'", "at least 0"),
        ({"extra": {"max_retries": 1.5}}, "connection 'c' extra 'max_retries'", "int"),
        ({"extra": {"max_retries": True}}, "connection 'c' extra 'max_retries'", "int"),
    ],
)
def test_bad_connection_names_the_connection_and_field(fields: dict[str, Any], field: str, problem: str) -> None:
    arguments = {"conn_id": "c", "host": None, "login": "1", "password": "t0ken1", **fields}
    with pytest.raises(ConnectionConfigError, match=problem) as error:
        settings_from_connection(**arguments)
    assert error.value.field == field


def test_a_token_pasted_into_the_host_is_not_echoed() -> None:
    with pytest.raises(ConnectionConfigError) as error:
        settings_from_connection(
            conn_id="c", host="https://api.chat-api.com/instance1?token=pasted-secret", login=None, password="t"
        )
    assert "pasted-secret" not in str(error.value)
    with pytest.raises(ConnectionConfigError) as error:
        settings_from_connection(
            conn_id="c", host="https://user:pasted-secret@api.chat-api.com", login=None, password="t"
        )
    assert "pasted-secret" not in str(error.value)


def test_extra_fields_given_as_text_and_left_empty() -> None:
    settings = settings_from_connection(
        conn_id="c", host=None, login="1", password="t", extra={"timeout": "2.5", "max_retries": "0"}
    )
    assert (settings.timeout, settings.max_retries) == (2.5, 0)
    default = settings_from_connection(conn_id="c", host=None, login="1", password="t", extra={"timeout": ""})
    assert (default.timeout, default.max_retries) == (DEFAULT_TIMEOUT, DEFAULT_MAX_RETRIES)


def test_settings_repr_hides_the_token() -> None:
    settings = settings_from_connection(conn_id="c", host=None, login="1", password=TOKEN)
    assert TOKEN not in repr(settings)
    assert TOKEN not in settings.api_url


# ---- the dialect -----------------------------------------------------------------------------------


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("fields", "dialect", "api_url"),
    [
        ({"host": "https://api.1msg.io/654321"}, "1msg", "https://api.1msg.io/654321"),
        ({"host": "https://api.1msg.io", "login": "654321"}, "1msg", "https://api.1msg.io/654321"),
        ({"host": "sandbox.1msg.io", "login": "instance654321"}, "1msg", "https://sandbox.1msg.io/654321"),
        ({"host": "https://api.1msg.io/instance654321"}, "1msg", "https://api.1msg.io/654321"),
        ({"host": "api.1msg.io", "schema": "654321"}, "1msg", "https://api.1msg.io/654321"),  # a connection URI
        ({"host": None, "password": jwt({"instanceId": "instance654321"})}, "1msg", "https://api.1msg.io/654321"),
        (
            {"host": "https://api.1msg.io", "password": jwt({"instanceId": 654321})},
            "1msg",
            "https://api.1msg.io/654321",
        ),
        ({"host": "https://api.chat-api.com", "login": "7"}, "chatapi", "https://api.chat-api.com/instance7"),
        (
            {"host": None, "login": "7", "extra": {"dialect": "chatapi"}},
            "chatapi",
            "https://api.chat-api.com/instance7",
        ),
        ({"host": "http://127.0.0.1:9/", "login": "7", "extra": {"dialect": "1msg"}}, "1msg", "http://127.0.0.1:9/7"),
        (
            {"host": "http://127.0.0.1:9/7", "extra": {"dialect": " 1MSG "}},
            "1msg",
            "http://127.0.0.1:9/7",
        ),
    ],
)
def test_dialect_and_url_from_the_connection(fields: dict[str, Any], dialect: str, api_url: str) -> None:
    settings = settings_from_connection(**{"conn_id": "c", "login": None, "password": TOKEN, **fields})
    assert (settings.dialect.name, settings.api_url) == (dialect, api_url)


def test_a_jwt_without_an_instance_claim_does_not_make_one_up() -> None:
    with pytest.raises(ConnectionConfigError, match="instance id is missing"):
        settings_from_connection(conn_id="c", host="https://api.1msg.io", login=None, password=jwt({"sub": "x"}))
