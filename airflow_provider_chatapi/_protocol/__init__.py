"""The Chat API protocols, private to the provider: pure functions and values, no I/O, no Airflow.

Everything a transport must get right lives here, once: turning what a DAG author passes into what
WhatsApp accepts, building each request, reading each answer, deciding what a failure means for the
message (certainly not queued, or possibly queued), and exchanges of several requests as generator
plans that the hook drives with ``requests`` or ``httpx``. The hook picks the dialect from the
connection; nothing above it knows which one runs.

Its modules, layered from the bottom up, are in the module map of ``docs/design.md``.
"""
