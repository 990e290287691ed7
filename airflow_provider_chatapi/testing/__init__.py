"""A stand-in Chat API gateway on loopback, for demos, this project's tests and your own DAG tests.

It is a real HTTP server on 127.0.0.1 that speaks either dialect: the classic protocol
(``/instance{ID}/``: ``sendContact`` with contact ids, ``status``, ``showMessagesQueue``, ``messages``) or
1msg's (``/{ID}/``: ``sendContact`` with full contact cards, ``status``, ``messages``; no queue listing).
It checks what it receives the way that gateway does, records every request, counts its clients' open
connections, and can be told to answer the next requests with any failure the real gateway shows::

    from airflow_provider_chatapi.testing import Fault, StandInGateway

    with StandInGateway() as gateway:
        monkeypatch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", gateway.connection_json())
        gateway.inject(Fault.rate_limited(retry_after=1))
        dag.test()
        assert [m.contact_ids for m in gateway.messages] == [("79001111111@c.us",)]
        assert gateway.wait_until_no_open_connections() == 0  # the tasks closed their connections

Run it by hand with ``python -m airflow_provider_chatapi.testing --port 8080 [--dialect 1msg]``; with
``--state FILE`` it keeps its cards across a restart, and its control API under ``/_standin/`` lets a test
in another process read and script it (``docs/staging.md``).

It imports nothing but the standard library and never listens beyond loopback. Its checks of what it
receives (:mod:`airflow_provider_chatapi.testing._checks`) are written independently of
:mod:`airflow_provider_chatapi._protocol`, so that a bug there cannot hide itself.
"""

from __future__ import annotations

# The stand-in's clock: it reads ``time.time()`` through this attribute, so that a test can set the
# clock with ``monkeypatch.setattr(airflow_provider_chatapi.testing, "time", ...)``.
import time  # noqa: F401

from airflow_provider_chatapi.testing._gateway import (
    DEFAULT_INSTANCE_ID,
    DEFAULT_PROFILE,
    DEFAULT_TOKEN,
    DIALECTS,
    Ack,
    Fault,
    QueuedMessage,
    StandInGateway,
)

# _Server is private, and here only for tests that patch the server (its ``handle_error``).
from airflow_provider_chatapi.testing._server import LOOPBACK, RecordedRequest, _Server  # noqa: F401

__all__ = [
    "DEFAULT_INSTANCE_ID",
    "DEFAULT_PROFILE",
    "DEFAULT_TOKEN",
    "DIALECTS",
    "LOOPBACK",
    "Ack",
    "Fault",
    "QueuedMessage",
    "RecordedRequest",
    "StandInGateway",
]
