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
from drill_lib.drill import Drill, Row
from drill_lib.gateway import Gateway
from drill_lib.releases import Release, releases
from drill_lib.scenarios import SCENARIOS
from drill_lib.services import DrillError, Services, wait_for

DAGS = Path(__file__).resolve().parent / "dags"
DAG_KINDS = ("fan_out", "slow_retry", "shuffled")  # drill_<kind>_<dialect>, dags/chatapi_drill.py
RELEASES = ("3.3.2", "2.11.2")
COLUMNS = (
    "airflow",
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
    parser.add_argument(
        "--releases",
        default=",".join(RELEASES),
        help=f"of {', '.join(RELEASES)}; each runs those of --scenarios it takes (2.11.2: kill_task, kill_worker)",
    )
    parser.add_argument("--delay", type=float, default=0.05, help="the stand-in's seconds per answer")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after teardown")
    options = parser.parse_args()
    options.scenarios = options.scenarios.split(",")
    options.dialects = options.dialects.split(",")
    options.releases = options.releases.split(",")
    if set(options.releases) - set(RELEASES):
        parser.error(f"unknown releases {sorted(set(options.releases) - set(RELEASES))}: choose from {RELEASES}")
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}: choose from {', '.join(SCENARIOS)}")
    return options


def start_backends(services: Services, gateways: dict[str, Gateway]) -> None:
    services.start_postgres()
    services.start_redis()
    for gateway in gateways.values():
        gateway.start()


def start_airflow(phases: Phases, services: Services, api: Api, dialects: list[str]) -> None:
    release = services.release
    phases.run(f"start {release.version}: airflow db migrate", migrate, services)
    phases.run(f"start {release.version}: Airflow processes ready", start_processes, services, api)
    phases.run(f"start {release.version}: DAGs parsed", parse_dags, services, api, dialects)


def migrate(services: Services) -> None:
    services.airflow("db", "migrate")
    services.release.setup(services)


def start_processes(services: Services, api: Api) -> None:
    release = services.release
    for name in release.processes:
        services.start_airflow(name)
    health = release.health_path
    wait_for(f"{health} answering", api.health, 120, services.log(release.processes[0]))
    for part in release.healthy:
        log = services.log(part.replace("_", "-"))
        wait_for(f"{part} healthy in {health}", lambda part=part: api.healthy(part), 120, log)
    for name in ("worker1", "worker2"):
        wait_for(
            f"Celery {name} ready",
            lambda name=name: services.check_alive() or services.worker_ready(name),
            120,
            services.log(name),
        )


def parse_dags(services: Services, api: Api, dialects: list[str]) -> None:
    for dag_id in (f"drill_{kind}_{dialect}" for dialect in dialects for kind in DAG_KINDS):
        wait_for(
            f"DAG {dag_id} parsed (GET {api.prefix}/dags/{dag_id})",
            lambda d=dag_id: api.dag_parsed(d),
            120,
            services.log(services.release.parser),
        )
        api.unpause(dag_id)


def run_release(
    phases: Phases,
    services: Services,
    release: Release,
    gateways: dict[str, Gateway],
    options: argparse.Namespace,
    rows: list[Row],
) -> None:
    """Start one release's Airflow, run its scenarios on every dialect (adding their rows), and stop it."""
    scenarios = [name for name in options.scenarios if release.scenarios is None or name in release.scenarios]
    if not scenarios:
        return
    connections = {
        f"AIRFLOW_CONN_CHATAPI_DRILL_{d.upper()}": gateway.connection_json for d, gateway in gateways.items()
    }
    services.use(release, {**connections, "DRILL_RECIPIENTS": str(options.recipients)})
    api = Api(f"http://127.0.0.1:{services.api_port}", release, services.api_password)
    try:
        start_airflow(phases, services, api, options.dialects)
        recipients = [f"7901{number:07d}" for number in range(options.recipients)]
        drill = Drill(services, api, release, gateways, recipients)
        for dialect in options.dialects:
            for scenario in scenarios:
                name = f"{release.version} {scenario}/{dialect}"
                row = phases.run(name, drill.run, scenario, dialect, SCENARIOS[scenario])
                rows.append(row)
                print(f"   {summary(row)}", flush=True)
    finally:
        phases.run(f"stop {release.version}", services.stop_airflow)


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
        shown = ("-" if value is None else str(value) for value in values)
        cells.append(
            (row.airflow, row.scenario, row.dialect, str(row.recipients), *shown, f"{row.seconds:.0f}", row.result)
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    targets = {row.airflow: row.targets for row in rows}
    held = [f"Targets on {airflow} (a row FAILs otherwise): {each.describe()}" for airflow, each in targets.items()]
    notes = []
    for row in rows:
        said = ([f"missed: {', '.join(row.missed)}"] if row.missed else []) + row.notes
        notes += [f"  {row.airflow} {row.scenario}/{row.dialect}: {'; '.join(said)}"] if said else []
    return "\n".join([*lines, *held, *(["Notes:", *notes] if notes else [])])


def main() -> int:
    options = parse()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # tear down on a TERM too, as on Ctrl-C
    root = Path(tempfile.mkdtemp(prefix="chatapi-drill-"))
    print(f"Drill directory (logs under {root}/logs)", flush=True)
    services = Services(root, DAGS)
    gateways = {dialect: Gateway(services, dialect, options.delay) for dialect in options.dialects}
    phases = Phases()
    rows: list[Row] = []
    status = 0
    try:
        phases.run("start: PostgreSQL, Redis, stand-ins", start_backends, services, gateways)
        for release in releases(options.releases):
            run_release(phases, services, release, gateways, options, rows)
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
