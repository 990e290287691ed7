"""The Chat API protocols, private to the provider: pure functions and values, no I/O, no Airflow.

Everything a transport must get right lives here, once: turning what a DAG author passes into what
WhatsApp accepts, building each request, reading each answer, deciding what a failure means for the
message (certainly not queued, or possibly queued), and exchanges of several requests as generator
plans that the hook drives with ``requests`` or ``httpx``.

Layered from the bottom up (a module imports only those above it in this list, and
:mod:`airflow_provider_chatapi.exceptions`):

- :mod:`.secrets`: the token kept out of text;
- :mod:`.http`: a request and an answer as values;
- :mod:`.clock`: the gateway's clock, from its answers' ``Date``, and intents placed on it;
- :mod:`.answers`: reading answers and classifying failures;
- :mod:`.plans`: exchanges as generators;
- :mod:`.whatsapp`, :mod:`.cards`, :mod:`.sends`: ids, contact cards, a validated send and its result;
- :mod:`.reconcile`: finding our own cards after lost answers, in one paged read of the history;
- :mod:`.dialect`, :mod:`.classic`, :mod:`.onemsg`: the two gateway dialects, side by side;
- :mod:`.settings`, :mod:`.connection`: which dialect, URL and limits a connection means;
- :mod:`.ledger`, :mod:`.delivery`: the record of a send across tries, and the one plan of a send.

The hook picks the dialect from the connection; nothing above it knows which one runs. Users import
from the public modules: :mod:`~airflow_provider_chatapi.hooks.chatapi`,
:mod:`~airflow_provider_chatapi.operators.chatapi`, :mod:`~airflow_provider_chatapi.notifications.chatapi`,
:mod:`~airflow_provider_chatapi.exceptions` and :mod:`~airflow_provider_chatapi.testing`.
"""
