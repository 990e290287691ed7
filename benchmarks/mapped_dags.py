"""The DAGs of item 5 of ``benchmarks/run.py``: one mapping of the same recipients over four operators.

``run.py`` copies this file into a temporary DAGs folder and calls ``.test()`` on each DAG:

- ``bench_empty``: ``EmptyOperator``, the requested baseline. The scheduler marks an EmptyOperator
  task instance successful without running it, so this is the cost of scheduling alone.
- ``bench_noop``: a trivial operator that returns its ``phone``: each task instance goes through the
  task runner and pushes an XCom, as ``SendContactOperator`` does, but sends nothing.
- ``bench_chatapi``: ``SendContactOperator``, sending one card per recipient to the stand-in gateway.
- ``bench_http``: the anchor, the http provider's ``HttpOperator`` making the very request the provider's
  classic dialect makes (``_protocol/classic.py``, ``hooks/_http.py``): ``POST
  {API URL}/sendContact?token=…`` with the JSON body ``{"phone": …, "contactId": ["…@c.us"]}``, given to
  ``requests`` as ``json=`` and ``params=`` as the hook's transport does, to the same stand-in through an
  ``http`` connection (``chatapi_http``) to its API URL; it returns the message id, as the provider does.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.http.operators.http import HttpOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, BaseOperator

from airflow_provider_chatapi.operators.chatapi import SendContactOperator
from airflow_provider_chatapi.testing import DEFAULT_TOKEN

if TYPE_CHECKING:
    from airflow.sdk import Context
    from requests import Response

MAP_LENGTH = int(os.environ.get("CHATAPI_BENCH_MAP_LENGTH", "50"))
RECIPIENTS = [f"7900{index:07d}" for index in range(MAP_LENGTH)]
CONTACT_IDS = ["79001111111"]
START = datetime(2025, 1, 1)
HTTP_CONN_ID = "chatapi_http"  # an ``http`` connection to the stand-in's API URL, set by item_dag.py
# What the classic dialect puts on the wire for each recipient: the body and the token in the query.
HTTP_REQUESTS = [
    {
        "json": {"phone": phone, "contactId": [f"{number}@c.us" for number in CONTACT_IDS]},
        "params": {"token": DEFAULT_TOKEN},
    }
    for phone in RECIPIENTS
]


class NoopOperator(BaseOperator):
    """Return ``phone``: a task instance that runs and pushes an XCom, and does nothing else."""

    def __init__(self, *, phone: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phone = phone

    def execute(self, context: Context) -> str:
        return self.phone


def message_id(response: Response) -> str:
    """The queued message's id from a ``sendContact`` answer: what ``SendContactOperator`` returns."""
    return str(response.json()["id"])


with DAG("bench_empty", schedule=None, start_date=START, catchup=False) as empty_dag:
    # EmptyOperator takes no argument of its own: map over a BaseOperator one that changes nothing.
    EmptyOperator.partial(task_id="each").expand(doc=RECIPIENTS)

with DAG("bench_noop", schedule=None, start_date=START, catchup=False) as noop_dag:
    NoopOperator.partial(task_id="each").expand(phone=RECIPIENTS)

with DAG("bench_chatapi", schedule=None, start_date=START, catchup=False) as chatapi_dag:
    SendContactOperator.partial(task_id="each", contact_ids=CONTACT_IDS).expand(phone=RECIPIENTS)

with DAG("bench_http", schedule=None, start_date=START, catchup=False) as http_dag:
    HttpOperator.partial(
        task_id="each", http_conn_id=HTTP_CONN_ID, endpoint="sendContact", method="POST", response_filter=message_id
    ).expand(request_kwargs=HTTP_REQUESTS)
