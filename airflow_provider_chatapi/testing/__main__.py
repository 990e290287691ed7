"""``python -m airflow_provider_chatapi.testing``: a stand-in gateway in a process of its own.

It prints two lines, each flushed at once: the API URL, then ``AIRFLOW_CONN_CHATAPI_DEFAULT='{...}'``.
With ``--port 0`` the port is a free one, which another process (the benchmarks) reads from those lines.
It serves until interrupted. ``--state FILE`` keeps its state across a restart (``_state.py``); the
control API (under ``/_standin/``, see ``_gateway.py``) lets a test in another process read and script it.
See ``docs/staging.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from airflow_provider_chatapi.testing import DEFAULT_INSTANCE_ID, DEFAULT_TOKEN, DIALECTS, Ack, StandInGateway
from airflow_provider_chatapi.testing._gateway import DEFAULT_ACKS, FAULT_KINDS, PREFIX
from airflow_provider_chatapi.testing._state import FLUSH_INTERVAL, State

_EPILOG = f"""\
control API (loopback only, no token, JSON; not recorded as gateway requests):
  GET  {PREFIX}requests[?endpoint=sendContact]   the requests received, as received
  GET  {PREFIX}messages                          every card accepted, delivered or queued
  GET  {PREFIX}stats                             requests per endpoint, cards, connections
  POST {PREFIX}faults   {{"endpoint": "sendContact", "faults": [{{"kind": "rate_limited", "retry_after": 1}}],
                        "times": 1}}  answer the next requests with these faults
  POST {PREFIX}reset                             forget requests, cards and pending faults
  POST {PREFIX}deliver_queue                     classic: deliver every queued card
fault kinds: {", ".join(FAULT_KINDS)}
"""


def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_chatapi.testing",
        description="Run a stand-in Chat API gateway on 127.0.0.1 until interrupted.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dialect", choices=DIALECTS, default="chatapi", help="the protocol (default: chatapi)")
    parser.add_argument("--no-history", action="store_true", help="1msg: answer messages with a notice")
    parser.add_argument("--port", type=int, default=8080, help="the port on 127.0.0.1; 0 for a free one")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the token it accepts (default: %(default)s)")
    parser.add_argument("--instance-id", default=DEFAULT_INSTANCE_ID, help="the instance id (default: %(default)s)")
    parser.add_argument("--account-status", help="what status reports (default: the dialect's healthy one)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep the requests, cards and ack clock in FILE (JSON, with FILE.journal) across a restart, a "
        f"killed process's included; loaded at start, snapshot every {FLUSH_INTERVAL:g} s while it changes",
    )
    parser.add_argument(
        "--acks-json",
        metavar="FILE",
        help='1msg: hookInfo\'s acks per chat, as JSON {"79001111111@c.us": [{"status": "sent", "after": 0}, '
        '...], "*": [...]} (fields of Ack; "*": every other chat)',
    )
    # Every other flag is the gateway's keyword argument of the same name.
    options = vars(parser.parse_args(argv))
    state_file, acks_file, history = options.pop("state"), options.pop("acks_json"), not options.pop("no_history")
    if options["dialect"] == "1msg" and f"/{options['instance_id']}/".startswith(PREFIX):
        parser.error(f"--instance-id {options['instance_id']}: 1msg's paths would be the control API's ({PREFIX})")
    scripts = json.loads(Path(acks_file).read_text(encoding="utf-8")) if acks_file else {}
    acks = {chat: [Ack(**fields) for fields in script] for chat, script in scripts.items()}
    gateway = StandInGateway(history=history, acks=acks, default_acks=acks.pop("*", DEFAULT_ACKS), **options)
    state = State(state_file).attach(gateway) if state_file else None
    gateway.start()
    print(f"Stand-in Chat API gateway ({gateway.dialect}) at {gateway.api_url}", flush=True)
    print(f"AIRFLOW_CONN_CHATAPI_DEFAULT='{gateway.connection_json()}'", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        gateway.stop()
        if state is not None:
            state.close()


if __name__ == "__main__":
    _serve()
