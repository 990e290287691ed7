"""The drill's runner: one scenario on one dialect is a :class:`Case` (its runs, where each run's cards begin
among the stand-in's), measured into a :class:`Row` from the stand-in's control API (cards, lookups),
PostgreSQL (the ledger) and the task's log files, and judged against its release's :class:`Targets`."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drill_lib.services import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from drill_lib.api import Api
    from drill_lib.gateway import Gateway
    from drill_lib.releases import Release
    from drill_lib.services import Services

RUN_TIMEOUT = 240.0  # a run, from its trigger (or its clear) to success or failure
LOOKUP_ENDPOINTS = ("messages", "showMessagesQueue")


@dataclass(frozen=True)
class Targets:
    """Issue 15's targets. Every row is held to all of its release's (``None``: not a target there); a row
    that misses one FAILs (exit status 1)."""

    run_succeeds: bool = True  # each run of the row ends in success
    duplicates: int = 0  # cards beyond those meant, per recipient and run
    lost: int | None = 0  # cards meant and never accepted, per recipient and run
    lookups: int = 100  # GET messages + showMessagesQueue in a row (item 3: after a crash at half of 2,000)
    record_bytes_per_recipient: int | None = 100  # the run's task_state_store values, summed (item 4)
    log_lines_per_try: int = 200  # lines of the task's log files, divided by its tries (item 5)

    def describe(self) -> str:
        held = ["the run succeeded"] if self.run_succeeds else []
        held.append(f"duplicates = {self.duplicates}")
        held.append(f"lost = {self.lost}" if self.lost is not None else "lost: reported, not a target")
        held.append(f"lookups <= {self.lookups}")
        if self.record_bytes_per_recipient is not None:
            held.append(f"record bytes <= {self.record_bytes_per_recipient} per recipient")
        held.append(f"log lines <= {self.log_lines_per_try} per try")
        return "; ".join(held)


# Scenarios that miss a target today, with the reason: printed as KNOWN-FAIL, not failing the drill.
KNOWN_FAILURES: dict[str, str] = {}


class ScenarioError(RuntimeError):
    """The scenario could not do what it meant to (the run ended before its fault, say): its row FAILs."""


@dataclass
class Row:
    scenario: str
    dialect: str
    recipients: int
    airflow: str = ""
    targets: Targets = field(default_factory=Targets)
    meant: int = 0
    sent: int = 0
    duplicates: int = 0
    lost: int = 0
    lookups: int = 0
    record_bytes: int | None = 0  # None: the release has no task state store
    log_lines: int = 0
    tries: int = 0
    state: str = "?"
    seconds: float = 0.0
    result: str = "?"
    notes: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)


@dataclass
class Case:
    """One scenario on one dialect as it runs: what it triggered, and where each run's cards begin."""

    drill: Drill
    row: Row
    gateway: Gateway
    dag_id: str
    runs: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # the stand-in's card count when each run was triggered
    per_run: list[int] = field(default_factory=list)  # cards meant per recipient in each run (a clear adds one)
    lookups_before: int = 0
    ended: float = 0.0  # time.monotonic() when its scenario was done

    @property
    def api(self) -> Api:
        return self.drill.api

    @property
    def services(self) -> Services:
        return self.drill.services

    @property
    def half(self) -> int:
        return len(self.drill.recipients) // 2

    def note(self, text: str) -> None:
        self.row.notes.append(text)

    def trigger(self, dag_id: str | None = None) -> str:
        """Trigger a run of the case's DAG (or ``dag_id``, which becomes the case's): its run id."""
        self.dag_id = dag_id or self.dag_id
        if not self.runs:  # the case's first run: the stand-in starts afresh
            self.gateway.reset()
            self.lookups_before = 0
        self.drill.counter += 1
        run_id = f"drill_{self.row.scenario}_{self.row.dialect}_{int(time.time())}_{self.drill.counter}"
        self.starts.append(self.gateway.cards())
        self.per_run.append(1)
        self.runs.append(run_id)
        self.api.trigger(self.dag_id, run_id)
        return run_id

    def adopt(self, previous: Case) -> None:
        """Take the last run of a case just measured as this case's first (the stand-in not reset since)."""
        self.dag_id, self.lookups_before = previous.dag_id, previous.lookups_before
        self.runs, self.starts, self.per_run = previous.runs[-1:], previous.starts[-1:], previous.per_run[-1:]
        self.note(f"reuses {previous.row.scenario}'s run")

    def again(self) -> None:
        """The last run's ``send`` is cleared after it succeeded ("do it again"): one more card per recipient."""
        self.per_run[-1] += 1

    def run_cards(self) -> int:
        """Cards the stand-in accepted since the last run was triggered."""
        return self.gateway.cards() - self.starts[-1]

    def at_half(self) -> int:
        """Wait until half the last run's cards are queued (the moment of a fault): the cards queued so far."""
        run_id = self.runs[-1]
        polls = iter(range(1 << 30))

        def reached() -> bool:  # the stand-in every 0.05 s, the REST API (dearer) every second
            return self.run_cards() >= self.half or (next(polls) % 20 == 19 and bool(self.finished(run_id)))

        wait_for(
            f"{self.row.scenario}/{self.row.dialect}: half the cards of {run_id} queued ({self.half})",
            reached,
            RUN_TIMEOUT,
            self.services.log("scheduler"),
            interval=0.05,
        )
        if self.finished(run_id):
            raise ScenarioError(f"run {run_id} ended ({self.finished(run_id)}) before its fault")
        return self.run_cards()

    def finished(self, run_id: str | None = None) -> str | None:
        state = self.api.run_state(self.dag_id, run_id or self.runs[-1])
        return state if state in ("success", "failed") else None

    def wait_run(self, run_id: str | None = None, timeout: float = RUN_TIMEOUT) -> str:
        """Wait until the run (default: the last) has succeeded or failed: which."""
        run_id = run_id or self.runs[-1]
        return wait_for(
            f"{self.row.scenario}/{self.row.dialect}: run {run_id} finished",
            lambda: self.finished(run_id),
            timeout,
            self.services.log("scheduler"),
            interval=0.5,
        )

    def wait_task(
        self, states: set[str], task_id: str = "send", timeout: float = RUN_TIMEOUT, *, after_try: int = 0
    ) -> dict[str, Any]:
        """Wait until the last run's ``task_id`` is in one of ``states`` in a try after ``after_try``, or the
        run ends: the task instance."""

        def state() -> dict[str, Any] | None:
            ti = self.api.task_instance(self.dag_id, self.runs[-1], task_id)
            return ti if (ti["state"] in states and ti["try_number"] > after_try) or self.finished() else None

        found = wait_for(
            f"{self.row.scenario}/{self.row.dialect}: task {task_id} of {self.runs[-1]} in {sorted(states)}",
            state,
            timeout,
            self.services.log("scheduler"),
        )
        if found["state"] not in states or found["try_number"] <= after_try:
            raise ScenarioError(
                f"task {task_id} became {found['state']} in try {found['try_number']}, "
                f"not {' or '.join(sorted(states))} after try {after_try}"
            )
        return found


@dataclass
class Drill:
    services: Services
    api: Api
    release: Release
    gateways: dict[str, Gateway]
    recipients: list[str]
    counter: int = 0
    last: dict[str, Case] = field(default_factory=dict)  # per dialect, the last case measured

    def run(self, scenario: str, dialect: str, act: Callable[[Case], None]) -> Row:
        gateway = self.gateways[dialect]
        row = Row(scenario, dialect, len(self.recipients), self.release.version, self.release.targets)
        case = Case(self, row, gateway, f"drill_fan_out_{dialect}")
        started = time.monotonic()
        try:
            act(case)
        except ScenarioError as error:
            row.notes.insert(0, f"scenario went wrong: {error}")
            self.settle(case)
        case.ended = time.monotonic()
        row.seconds = case.ended - started
        self.services.check_alive()
        self.measure(case)
        self.last[dialect] = case
        return row

    def settle(self, case: Case) -> None:
        """After a scenario went wrong: fail its runs still going, so that none holds up the next scenario."""
        for run_id in case.runs:
            if not case.finished(run_id):
                self.api.fail_run(case.dag_id, run_id)
                case.wait_run(run_id, timeout=60)
        case.row.state = "failed"
        sends: list[int] = []

        def quiet() -> bool:  # no sendContact for 2 s: the failed run's task process has stopped sending
            sends.append(case.gateway.stats()["requests"].get("sendContact", 0))
            return len(sends) > 8 and sends[-1] == sends[-9]

        wait_for("the stand-in quiet (no sendContact for 2 s) after a failed scenario", quiet, 120, interval=0.25)

    def measure(self, case: Case) -> None:
        row, gateway = case.row, case.gateway
        if not case.runs:
            row.state, row.result = "none", "FAIL"
            return
        stats = gateway.stats()
        messages = gateway.messages()
        wanted = set(self.recipients)
        bounds = [*case.starts, len(messages)]
        row.meant = len(wanted) * sum(case.per_run)
        row.sent = len(messages) - bounds[0]
        for (start, end), meant in zip(itertools.pairwise(bounds), case.per_run, strict=True):
            cards = Counter(message["chat_id"].split("@", 1)[0] for message in messages[start:end])
            row.duplicates += sum(max(count - meant, 0) for chat, count in cards.items() if chat in wanted)
            row.lost += sum(max(meant - cards[chat], 0) for chat in wanted)  # each run: `meant` cards a recipient
            stray = sum(count for chat, count in cards.items() if chat not in wanted)
            if stray:
                row.notes.append(f"{stray} cards to chats not in the list")
                row.duplicates += stray
        row.lookups = sum(stats["requests"].get(endpoint, 0) for endpoint in LOOKUP_ENDPOINTS) - case.lookups_before
        states = [self.api.run_state(case.dag_id, run_id) for run_id in case.runs]
        if row.state == "?":
            row.state = next((state for state in states if state != "success"), "success")
        row.record_bytes = self.record_bytes(case.dag_id, case.runs[-1])
        row.log_lines, row.tries = self.log_lines(case.dag_id, case.runs[-1])
        if stats["errors"]:
            row.notes.append(f"stand-in errors: {stats['errors'][:3]}")
        judge(row)

    def record_bytes(self, dag_id: str, run_id: str) -> int | None:
        if not self.release.has_state_store:
            return None
        import psycopg2

        dsn = f"host=127.0.0.1 port={self.services.pg_port} user=airflow dbname={self.services.db_name}"
        with psycopg2.connect(dsn) as db, db.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(octet_length(value)), 0) FROM task_state_store WHERE dag_id = %s AND run_id = %s",
                (dag_id, run_id),
            )
            return int(cursor.fetchone()[0])

    def log_lines(self, dag_id: str, run_id: str) -> tuple[int, int]:
        folder = self.services.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / "task_id=send"
        attempts = sorted(folder.glob("attempt=*.log"))
        return sum(len(path.read_bytes().splitlines()) for path in attempts), len(attempts)


def judge(row: Row) -> None:
    """Hold the row to its release's targets: PASS, FAIL, or KNOWN-FAIL (a scenario in ``KNOWN_FAILURES``)."""
    targets = row.targets
    if row.state != "success" and targets.run_succeeds:
        row.missed.append(f"run {row.state}")
    elif row.state != "success":
        row.notes.append(f"run {row.state} (allowed on Airflow {row.airflow})")
    if row.duplicates > targets.duplicates:
        row.missed.append(f"{row.duplicates} duplicates")
    if targets.lost is not None and row.lost > targets.lost:
        row.missed.append(f"{row.lost} lost")
    elif row.lost:
        row.notes.append(f"{row.lost} lost (reported, allowed on Airflow {row.airflow}: at most once)")
    if row.lookups > targets.lookups:
        row.missed.append(f"{row.lookups} lookups > {targets.lookups}")
    limit = targets.record_bytes_per_recipient
    if limit is not None and row.record_bytes is not None and row.record_bytes > limit * row.recipients:
        per = row.record_bytes / row.recipients
        row.missed.append(f"record {per:.0f} B/recipient > {targets.record_bytes_per_recipient}")
    if row.log_lines > targets.log_lines_per_try * max(row.tries, 1):
        per = row.log_lines / max(row.tries, 1)
        row.missed.append(f"{per:.0f} log lines/try > {targets.log_lines_per_try}")
    if not row.missed:
        row.result = "PASS"
    elif row.scenario in KNOWN_FAILURES:
        row.result = "KNOWN-FAIL"
        row.notes.insert(0, KNOWN_FAILURES[row.scenario])
    else:
        row.result = "FAIL"
