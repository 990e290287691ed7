"""Start the distributed setup on loopback, run the scenarios on both dialects, print the table, tear down.

Run through ``scripts/drill``, which installs what this needs and runs it in the drill's venv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from drill_lib.api import Api
from drill_lib.drill import TARGETS, Drill, Row
from drill_lib.gateway import Gateway
from drill_lib.scenarios import SCENARIOS
from drill_lib.services import DrillError, Services, wait_for

DAGS = Path(__file__).resolve().parent / "dags"
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker1", "worker2")
COLUMNS = (
    "scenario",
    "dialect",
    "recipients",
    "cards meant",
    "cards sent",
    "duplicates",
    "lost",
    "lookups",
    "record bytes",
)
COLUMNS += ("log lines", "tries", "seconds", "result")


class Phases:
    def __init__(self) -> None:
        self.timings: list[tuple[str, float]] = []
        install = os.environ.get("DRILL_INSTALL_SECONDS")
        if install:
            self.timings.append(("install", float(install)))

    def run(self, name: str, step, *args):
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            return step(*args)
        finally:
            self.timings.append((name, time.monotonic() - started))

    def show(self) -> None:
        print("\nPhase timings: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.timings))
        print(f"Total: {sum(seconds for _, seconds in self.timings):.0f} s")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/drill", description=__doc__)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"of {', '.join(SCENARIOS)}")
    parser.add_argument("--dialects", default="chatapi,1msg")
    parser.add_argument("--delay", type=float, default=0.05, help="the stand-in's seconds per answer")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after teardown")
    options = parser.parse_args()
    options.scenarios = options.scenarios.split(",")
    options.dialects = options.dialects.split(",")
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}: choose from {', '.join(SCENARIOS)}")
    return options


def start(phases: Phases, services: Services, api: Api, gateways: dict[str, Gateway], recipients: int) -> None:
    phases.run("start: PostgreSQL, Redis, stand-ins", start_backends, services, gateways, recipients)
    phases.run("start: airflow db migrate", services.airflow, "db", "migrate")
    phases.run("start: Airflow processes ready", start_airflow, services, api)
    phases.run("start: DAGs parsed", parse_dags, services, api, gateways)


def start_backends(services: Services, gateways: dict[str, Gateway], recipients: int) -> None:
    services.start_postgres()
    services.start_redis()
    for gateway in gateways.values():
        gateway.start()
    connections = {
        f"AIRFLOW_CONN_CHATAPI_DRILL_{d.upper()}": gateway.connection_json for d, gateway in gateways.items()
    }
    services.airflow_env({**connections, "DRILL_RECIPIENTS": str(recipients)})


def start_airflow(services: Services, api: Api) -> None:
    for name in PROCESSES:
        services.start_airflow(name)
    wait_for("api-server /api/v2/monitor/health", api.health, 120, services.log("api-server"))
    for part, log in (("scheduler", "scheduler"), ("triggerer", "triggerer"), ("dag_processor", "dag-processor")):
        wait_for(
            f"{part} healthy in /api/v2/monitor/health",
            lambda part=part: api.health()[part]["status"] == "healthy",
            120,
            services.log(log),
        )
    for name in ("worker1", "worker2"):
        wait_for(
            f"Celery {name} ready",
            lambda name=name: services.check_alive() or " ready." in services.log(name).read_text(),
            120,
            services.log(name),
        )


def parse_dags(services: Services, api: Api, gateways: dict[str, Gateway]) -> None:
    for dag_id in (f"drill_{kind}_{dialect}" for dialect in gateways for kind in ("fan_out", "slow_retry")):
        wait_for(
            f"DAG {dag_id} parsed (GET /api/v2/dags/{dag_id})",
            lambda d=dag_id: api.dag_parsed(d),
            120,
            services.log("dag-processor"),
        )
        api.unpause(dag_id)


def summary(row: Row) -> str:
    missed = f" (missed: {', '.join(row.missed)})" if row.missed else ""
    return f"{row.result}: {row.sent} cards of {row.meant} meant, {row.duplicates} duplicates, {row.lost} lost{missed}"


def table(rows: list[Row]) -> str:
    cells = [COLUMNS]
    for row in rows:
        values = (
            row.meant,
            row.sent,
            row.duplicates,
            row.lost,
            row.lookups,
            row.record_bytes,
            row.log_lines,
            row.tries,
        )
        cells.append(
            (row.scenario, row.dialect, str(row.recipients), *map(str, values), f"{row.seconds:.0f}", row.result)
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = []
    for row in rows:
        said = ([f"missed: {', '.join(row.missed)}"] if row.missed else []) + row.notes
        notes += [f"  {row.scenario}/{row.dialect}: {'; '.join(said)}"] if said else []
    return "\n".join([*lines, TARGETS.describe(), *(["Notes:", *notes] if notes else [])])


def main() -> int:
    options = parse()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # tear down on a TERM too, as on Ctrl-C
    root = Path(tempfile.mkdtemp(prefix="chatapi-drill-"))
    print(f"Drill directory (logs under {root}/logs)", flush=True)
    services = Services(root, DAGS)
    api = Api(f"http://127.0.0.1:{services.api_port}")
    gateways = {dialect: Gateway(services, dialect, options.delay) for dialect in options.dialects}
    phases = Phases()
    rows: list[Row] = []
    status = 0
    try:
        start(phases, services, api, gateways, options.recipients)
        recipients = [f"7901{number:07d}" for number in range(options.recipients)]
        drill = Drill(services, api, gateways, recipients)
        for dialect in options.dialects:
            for scenario in options.scenarios:
                row = phases.run(f"{scenario}/{dialect}", drill.run, scenario, dialect, SCENARIOS[scenario])
                rows.append(row)
                print(f"   {summary(row)}", flush=True)
    except DrillError as error:
        print(f"\nDRILL ERROR: {error}", file=sys.stderr)
        status = 2
    finally:
        phases.run("teardown", services.stop_all)
        if rows:
            print("\n" + table(rows))
        phases.show()
        if options.keep or status:
            print(f"Logs kept in {root}/logs")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if any(row.result == "FAIL" for row in rows):
        status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
