"""``python -m airflow_provider_chatapi.testing``: a stand-in gateway in a process of its own.

It prints two lines, each flushed at once: the API URL, then ``AIRFLOW_CONN_CHATAPI_DEFAULT='{...}'``.
With ``--port 0`` the port is a free one, which another process (the benchmarks) reads from those lines.
It serves until interrupted.
"""

from __future__ import annotations

import argparse
import time

from airflow_provider_chatapi.testing._gateway import DEFAULT_INSTANCE_ID, DEFAULT_TOKEN, DIALECTS, StandInGateway


def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_chatapi.testing", description="Run a stand-in Chat API gateway on 127.0.0.1."
    )
    parser.add_argument("--dialect", choices=DIALECTS, default="chatapi")
    parser.add_argument("--no-history", action="store_true", help="1msg: answer messages with a notice")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--instance-id", default=DEFAULT_INSTANCE_ID)
    parser.add_argument("--account-status", help="what status reports (default: the dialect's healthy one)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args(argv)
    gateway = StandInGateway(
        dialect=args.dialect,
        history=not args.no_history,
        token=args.token,
        instance_id=args.instance_id,
        port=args.port,
        account_status=args.account_status,
        delay=args.delay,
    ).start()
    print(f"Stand-in Chat API gateway ({args.dialect}) at {gateway.api_url}", flush=True)
    print(f"AIRFLOW_CONN_CHATAPI_DEFAULT='{gateway.connection_json()}'", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        gateway.stop()


if __name__ == "__main__":
    _serve()
