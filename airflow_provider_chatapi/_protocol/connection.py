"""A ``chatapi`` connection read into :class:`GatewaySettings`: which dialect, URL, instance, token and limits.

The dialect is the extra ``dialect`` (``"chatapi"`` for the classic protocol, ``"1msg"``); without it a
host on ``1msg.io`` means 1msg, any other host the classic protocol, and no host at all 1msg's live
service. The instance id may stand in the login, at the end of the API URL (or in ``schema``, where a
connection URI such as ``chatapi://:TOKEN@api.1msg.io/123456`` puts it), or in the token itself when that
is a JWT with an ``instanceId`` claim, as 1msg's channel tokens are.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_chatapi._protocol.classic import CLASSIC
from airflow_provider_chatapi._protocol.onemsg import ONEMSG
from airflow_provider_chatapi._protocol.whatsapp import DIGITS, checked_region
from airflow_provider_chatapi.exceptions import ConnectionConfigError, InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_chatapi._protocol.dialect import Dialect

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "DIALECTS",
    "GatewaySettings",
    "HiddenToken",
    "connection_fields",
    "instance_from_token",
    "resolve_api_url",
    "settings_from_connection",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the gateway to connect and, separately, to answer."""
DEFAULT_MAX_RETRIES = 3
"""Retries of a request the gateway certainly did not process (connect failure, 429, 503)."""
DIALECTS: dict[str, Dialect] = {CLASSIC.name: CLASSIC, ONEMSG.name: ONEMSG}
"""The dialects by the name the connection's ``dialect`` extra gives."""
_ONEMSG_DOMAIN = "1msg.io"
_INSTANCE_PREFIX = re.compile("^instance", re.IGNORECASE | re.ASCII)  # an instance id may read instance123456


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Where and how to reach one instance. The token is left out of ``repr()``."""

    api_url: str
    token: str = field(repr=False)
    dialect: Dialect
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    default_region: str | None = None
    """Where a number written the national way is read (an ISO country code); None: nowhere."""


class HiddenToken(str):
    """The token on its way from the connection to the settings, shown as ``'***'`` by ``repr()``.

    Airflow 3.0's ``dags test`` prints a failed task's traceback with every frame's locals, and an Airflow 3
    ``Connection`` shows its password in ``repr()``: a refused connection must hold neither in a frame.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def connection_fields(conn: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields :func:`settings_from_connection` reads from an Airflow connection (``extra``: its
    ``extra_dejson`` unless given), the password hidden."""
    fields = {name: getattr(conn, name) for name in ("host", "login", "port", "schema")}
    return {
        **fields,
        "password": HiddenToken(conn.password or ""),
        "extra": conn.extra_dejson if extra is None else extra,
    }


def settings_from_connection(
    *,
    conn_id: str,
    host: str | None,
    login: str | None,
    password: str | None,
    port: int | None = None,
    schema: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> GatewaySettings:
    """Read a ``chatapi`` connection's fields into settings; raise :class:`ConnectionConfigError` if unusable."""
    token = HiddenToken((password or "").strip())
    if not token:
        raise ConnectionConfigError(conn_id, "password", None, "the instance's API token is missing")
    given = {name: value for name, value in (extra or {}).items() if value is not None and value != ""}
    named = str(given.get("dialect", "")).strip().lower()
    if named and named not in DIALECTS:
        raise ConnectionConfigError(
            conn_id, "extra 'dialect'", given["dialect"], "must be 'chatapi' (the classic protocol) or '1msg'"
        )
    text = (host or "").strip()
    hostname = urlsplit(text if "://" in text else f"https://{text}").hostname or ""
    on_1msg = not text or hostname == _ONEMSG_DOMAIN or hostname.endswith(f".{_ONEMSG_DOMAIN}")
    dialect = DIALECTS.get(named) or (ONEMSG if on_1msg else CLASSIC)  # the one it names, else its host's
    if schema and schema.strip() and text:
        text = f"{text.rstrip('/')}/{schema.strip().strip('/')}"
    api_url = resolve_api_url(conn_id, text or dialect.default_base_url, login, port, dialect, token)
    timeout = _extra_number(given, "timeout", conn_id, DEFAULT_TIMEOUT, float, minimum=0.001)
    max_retries = _extra_number(given, "max_retries", conn_id, DEFAULT_MAX_RETRIES, int, minimum=0)
    try:
        region = checked_region(given.get("default_region"))
    except InvalidInputError as error:
        raise ConnectionConfigError(conn_id, "extra 'default_region'", error.value, error.problem) from None
    return GatewaySettings(api_url, str(token), dialect, timeout, max_retries, region)


def resolve_api_url(conn_id: str, host: str, login: str | None, port: int | None, dialect: Dialect, token: str) -> str:
    """Return the instance's API URL from a connection's host (never empty), login (instance id), port and token.

    A host without a scheme means https; an explicit ``http://127.0.0.1:8080`` is kept. The instance is
    appended in the dialect's form unless the host already ends in it.
    """
    parts = urlsplit(host if "://" in host else f"https://{host}")
    shown = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))

    def bad_host(problem: str) -> ConnectionConfigError:
        # Never echo a query string or user info: a token pasted there would land in the log.
        return ConnectionConfigError(conn_id, "host", shown, problem)

    if parts.scheme not in ("http", "https"):
        raise bad_host("the API URL must start with https:// or http://")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise bad_host("the API URL must not carry a query, fragment or user info; put the token in the password")
    try:
        explicit_port = parts.port
    except ValueError:
        raise bad_host("the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise bad_host("the API URL has no host name")
    netloc = f"{parts.netloc}:{port}" if port and explicit_port is None else parts.netloc
    path = parts.path.rstrip("/")
    in_path = dialect.instance_in_path.search(path)
    stripped = (login or "").strip()
    number = _INSTANCE_PREFIX.sub("", stripped) or None
    if number and not DIGITS.fullmatch(number):
        raise ConnectionConfigError(conn_id, "login", stripped, "the instance id is a number")
    if number and in_path and in_path.group(1) != number:
        differs = f"differs from the instance in the API URL {shown!r}; leave the login empty"
        raise ConnectionConfigError(conn_id, "login", login, differs)
    if in_path:
        path = path[: in_path.start()] + dialect.instance_path.format(in_path.group(1))
    else:
        number = number or instance_from_token(token)
        if not number:
            example = f"{dialect.default_base_url}{dialect.instance_path.format('123456')}"
            where = f"put it in the Instance ID field (login) or at the end of the API URL ({example})"
            raise ConnectionConfigError(conn_id, "login", login, f"the instance id is missing: {where}")
        path = f"{path}{dialect.instance_path.format(number)}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def instance_from_token(token: str) -> str | None:
    """The instance id in a JWT token's ``instanceId`` claim (``instance123456`` gives ``123456``), if any.

    Reading a claim needs no signature check, and the token stays a secret all the same.
    """
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(pieces[1] + "=" * (-len(pieces[1]) % 4)))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        return None
    claim = claims.get("instanceId") if isinstance(claims, dict) else None
    if isinstance(claim, bool) or not isinstance(claim, (str, int)):
        return None
    number = _INSTANCE_PREFIX.sub("", str(claim).strip())
    return number if DIGITS.fullmatch(number) else None


def _extra_number(
    extra: Mapping[str, Any], name: str, conn_id: str, default: Any, kind: type, *, minimum: float
) -> Any:
    raw = extra.get(name)
    if raw is None:
        return default
    try:
        number = kind(raw)
        # True is no number, and a whole number is asked for as an int: 1.5 is not 1.
        usable = not isinstance(raw, bool) and math.isfinite(number) and number >= minimum and number == float(raw)
    except (TypeError, ValueError, OverflowError):  # int(float("inf")) overflows
        usable = False
    if not usable:
        raise ConnectionConfigError(conn_id, f"extra {name!r}", raw, f"must be a {kind.__name__} of at least {minimum}")
    return number
