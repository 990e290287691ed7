"""The drill's scenarios: each triggers its runs, does its fault, and waits for them to end (``drill.py``
measures the row). Every wait is a bounded poll that names what it waits for; a scenario that cannot do what
it means to raises :class:`ScenarioError`, which FAILs its row."""

from __future__ import annotations

import glob
import json
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drill_lib.drill import RUN_TIMEOUT, ScenarioError
from drill_lib.services import ancestors, descendants, kill_pids, session_members, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from drill_lib.drill import Case

WORKERS = ("worker1", "worker2")
RETRYABLE_FAULTS = [  # a lost answer that hid a queued card, then one that hid nothing: neither retried in place
    {"kind": "server_error", "status": 500, "queued": True},
    {"kind": "server_error", "status": 500, "queued": False},
]
REFUSAL = {"kind": "rejected", "message": "The number is not on WhatsApp"}  # the gateway's sent: false
REUSE_WITHIN = 30.0  # seconds since the previous row's run ended for clear_succeeded or twice to take it
FAULTED = 20  # sends answered with a fault in clear_other and clear_failed
SHUFFLE_SEED = 20  # issue 20: the order the shuffled scenario's retry gets, the same on every run
AGAIN_AFTER = 100  # cards the retry queues before shuffled_twice kills it
SKEW, SKEW_SECONDS = "-20s", 20.0  # the skewed worker's clock: FAKETIME, and how far behind that is


def baseline(case: Case) -> None:
    """No fault: one run."""
    case.trigger()
    case.wait_run()


def kill_task(case: Case) -> None:
    """``kill -9`` of the task process alone (the supervisor's child) once half the cards are queued; its
    supervisor reports the try failed, and Airflow retries it."""
    case.trigger()
    case.note(_kill_task_process(case, case.at_half()))
    case.wait_run()


def kill_worker(case: Case) -> None:
    """``kill -9`` of the Celery worker running the fan-out, with its pool and task processes; then a new one.
    The heartbeat timeout fails the try, and Airflow retries it on a worker."""
    case.trigger()
    case.note(_kill_worker(case)[2])
    case.wait_run()


def shuffled(case: Case) -> None:
    """As ``kill_worker``, but the retry gets the same recipients in another order: ``drill_shuffled_*``
    renders them from a Variable at the start of each try, which is rewritten shuffled right after the kill
    (the retry cannot start before the heartbeat timeout). The drill checks what each try rendered."""
    _shuffled(case, again=False)


def shuffled_twice(case: Case) -> None:
    """As ``shuffled``, and then the retry is killed too (``kill -9`` of its task process, as ``kill_task``)
    once it has queued :data:`AGAIN_AFTER` cards, with the recipients shuffled another way for try 3."""
    _shuffled(case, again=True)


def _shuffled(case: Case, *, again: bool) -> None:
    key = f"drill_shuffled_{case.row.dialect}"  # the DAG, and the Variable it renders its recipients from
    orders = [list(case.drill.recipients)]
    for seed in (SHUFFLE_SEED, SHUFFLE_SEED + 1):
        orders.append(list(orders[0]))
        random.Random(seed).shuffle(orders[-1])
    case.api.set_variable(key, json.dumps(orders[0]))
    case.trigger(key)
    _, ti, said = _kill_worker(case)
    case.api.set_variable(key, json.dumps(orders[1]))
    tries, notes = [ti], [said, "the Variable shuffled"]
    if again:
        killed = case.run_cards()
        case.wait_task({"running"}, after_try=1)
        wait_for(
            f"{case.row.scenario}/{case.row.dialect}: the retry queued {AGAIN_AFTER} cards",
            lambda: case.run_cards() >= killed + AGAIN_AFTER or case.finished(),
            RUN_TIMEOUT,
            interval=0.05,
        )
        tries.append(case.api.task_instance(case.dag_id, case.runs[-1]))
        notes.append(_kill_task_process(case, case.run_cards()) + f" of try {tries[-1]['try_number']}")
        case.api.set_variable(key, json.dumps(orders[2]))
        notes.append("the Variable shuffled another way")
    case.wait_run()
    tries.append(case.api.task_instance(case.dag_id, case.runs[-1]))
    seen = {f"try {ti['try_number']}": _rendered(ti) for ti in tries}
    shown = min(map(len, seen.values()))
    rendered = " and ".join(f"{name} rendered {numbers[:2]}…" for name, numbers in seen.items())
    case.note(f"{'; '.join(notes)}; {rendered} (compared on the first {shown} recipients rendered_fields shows)")
    for (name, numbers), meant in zip(seen.items(), orders, strict=False):
        if len(numbers) < 20 or numbers != meant[: len(numbers)]:
            raise ScenarioError(f"{name} rendered {numbers[:3]}…, not the order it was meant: {meant[:3]}…")


def skewed(case: Case) -> None:
    """As ``kill_worker``, but the retry runs on a worker whose clock is 20 s behind (Debian's libfaketime,
    preloaded into it and so into its supervisor and task processes). worker2 is stopped first, so try 1 runs
    on worker1; at half, worker1 is killed and worker2 started under faketime, the only worker, which takes the
    retry; worker1 comes back once the retry runs there. The drill checks where the retry ran, that its task
    process has libfaketime loaded, and that the clock it logs by is 20 s behind; then it restarts worker2
    without faketime."""
    services = case.services
    services.kill_tree("worker2")  # idle between scenarios: nothing to wait for
    try:
        case.trigger()
        victim, _, said = _kill_worker(case, restart=False)
        if victim != "worker1":
            raise ScenarioError(f"try 1 ran on {victim} with worker2 stopped")
        services.start_airflow("worker2", faketime_env())
        retry = case.wait_task({"running"}, after_try=1)
        seen = datetime.now(UTC)
        case.note(f"{said}; worker2 started with FAKETIME={SKEW}; {_where(case, retry)}")
        services.start_airflow("worker1")
        case.wait_run()
        case.note(_clocks(case, retry, seen))
    finally:
        services.kill_tree("worker2")  # idle again: the run has ended (or been failed)
        services.start_airflow("worker2")
        if services.procs["worker1"].poll() is not None:
            services.start_airflow("worker1")
        for name in WORKERS:
            wait_for(f"Celery {name} ready", lambda name=name: services.worker_ready(name), 120, services.log(name))


def restart_scheduler(case: Case) -> None:
    """``kill -9`` of the scheduler mid fan-out, and a new one; the task goes on on its worker."""
    case.trigger()
    queued = case.at_half()
    killed = case.services.kill_tree("scheduler")
    case.services.start_airflow("scheduler")
    case.note(f"kill -9 scheduler ({len(killed)} processes) at {queued} cards")
    case.wait_run()


def restart_gateway(case: Case) -> None:
    """``kill -9`` of the stand-in mid fan-out, then a new one on the same port with the same state file. The
    sends in flight lose their answers; while it is down, sends cannot connect (retried in place)."""
    gateway = case.gateway
    case.trigger()
    case.at_half()
    before = case.run_cards()  # a lower bound: it may accept a few more before the kill lands
    killed = gateway.kill()
    down = gateway.start()
    kept = case.run_cards()
    case.note(f"kill -9 stand-in ({len(killed)} processes) at {before}+ cards; down {down:.1f} s; {kept} kept")
    if kept < before:
        raise ScenarioError(f"the restarted stand-in lost cards: {kept} of at least {before}")
    case.wait_run()


def clear_other(case: Case) -> None:
    """The fan-out's first try fails part-way (lost answers, some of which hid a queued card); while it waits
    for its retry (``drill_slow_retry_*``), the run's other task is cleared. The retry sends what is missing."""
    case.trigger(f"drill_slow_retry_{case.row.dialect}")
    case.at_half()
    case.gateway.inject(RETRYABLE_FAULTS, times=FAULTED // len(RETRYABLE_FAULTS))
    case.wait_task({"up_for_retry"})
    cleared = case.api.clear(case.dag_id, case.runs[-1], ["other"], only_failed=False)
    send = case.api.task_instance(case.dag_id, case.runs[-1])
    after = datetime.now(UTC) - datetime.fromisoformat(send["end_date"])
    case.note(
        f"{FAULTED} sends answered 500 (half queued); cleared {cleared} {after.total_seconds():.1f} s after "
        f"the first try failed, send {send['state']}"
    )
    send = send["state"]
    if cleared != ["other"] or send != "up_for_retry":
        raise ScenarioError(f"cleared {cleared} while send was {send}: not 'other' during send's retry wait")
    case.wait_run()


def clear_failed(case: Case) -> None:
    """The gateway refuses some recipients (``sent: false``, not retried): the task fails. The refusal gone,
    the failed task is cleared, and must send only to the recipients not served."""
    case.trigger()
    case.at_half()
    case.gateway.inject([REFUSAL], times=FAULTED)
    first = case.wait_run()
    served = case.run_cards()
    if first != "failed":
        raise ScenarioError(f"the run with {FAULTED} refusals ended {first}, not failed")
    cleared = case.api.clear(case.dag_id, case.runs[-1], ["send"], only_failed=True)
    case.note(f"{FAULTED} sends refused; the run failed with {served} cards; cleared {cleared}")
    if cleared != ["send"]:
        raise ScenarioError(f"the clear of the failed send cleared {cleared}")
    case.wait_run()  # the clear queued the run again before it answered: no stale "failed" here


def clear_succeeded(case: Case) -> None:
    """A run succeeds, then its ``send`` is cleared (``only_failed=false``) and runs again: a clear after a
    success asks to do it again, so the run is meant two cards per recipient. The run is the baseline's when it
    ran just before on this dialect (else a run of its own)."""
    _succeeded(case, "baseline")
    before = case.api.task_instance(case.dag_id, case.runs[-1])
    served = case.run_cards()
    case.again()
    cleared = case.api.clear(case.dag_id, case.runs[-1], ["send"], only_failed=False)
    if cleared != ["send"]:
        raise ScenarioError(f"the clear of the succeeded send cleared {cleared}")
    case.wait_run()  # the clear queued the run again before it answered: no stale "success" here
    after = case.api.task_instance(case.dag_id, case.runs[-1])
    case.note(
        f"the run succeeded with {served} cards (try {before['try_number']}); cleared {cleared}; "
        f"try {after['try_number']} {after['state']} with {case.run_cards() - served} more"
    )
    if after["try_number"] <= before["try_number"]:
        raise ScenarioError(f"send did not run again after the clear (try {after['try_number']})")


def twice(case: Case) -> None:
    """The same broadcast twice within seconds: two runs of the DAG. Run 1 is the one ``clear_succeeded`` or
    the baseline ran just before on this dialect (else a run of its own); run 2 is triggered once run 1
    succeeded, its task process killed at half, and retried by Airflow. Each run is meant one card per
    recipient, and run 1 one more for each clear after it succeeded (``clear_succeeded``'s: two)."""
    _succeeded(case, "baseline", "clear_succeeded")
    case.trigger()
    case.note(_kill_task_process(case, case.at_half()) + " of run 2")
    case.wait_run()


def _succeeded(case: Case, *reusable: str) -> None:
    """Give the case a run that succeeded: the last run of the row just measured on this dialect when that row
    is one of ``reusable``, its run succeeded with no duplicate or loss, and ended within ``REUSE_WITHIN``
    (the stand-in has not been reset since); else a run of its own."""
    previous = case.drill.last.get(case.row.dialect)
    exact = previous is not None and previous.row.state == "success" and not previous.row.duplicates + previous.row.lost
    if exact and previous.row.scenario in reusable and time.monotonic() - previous.ended < REUSE_WITHIN:
        case.adopt(previous)
    else:
        case.trigger()
        state = case.wait_run()
        if state != "success":
            raise ScenarioError(f"run 1 ended {state}, not success")


def _kill_task_process(case: Case, queued: int) -> str:
    """SIGKILL the process running the operator (the task instance's ``pid``: the child of its supervisor,
    in a Celery worker's session) and whatever it started; the supervisor and the worker live on."""
    services = case.services
    pid = case.api.task_instance(case.dag_id, case.runs[-1]).get("pid")
    worker = next((name for name in WORKERS if pid in session_members(services.procs[name].pid)), None)
    if not pid or worker is None:
        raise ScenarioError(f"task pid {pid} is in no Celery worker's session")
    chain = ancestors(pid)
    supervisor = chain[1] if len(chain) > 1 else None
    if supervisor is None or supervisor == services.procs[worker].pid:
        raise ScenarioError(f"task pid {pid} has no supervisor between it and {worker}")
    victims = descendants(pid)
    kill_pids(victims)
    wait_for(f"task process {pid} gone", lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10)
    children = f"+{len(victims) - 1} children" if len(victims) > 1 else "no children"
    return f"kill -9 task process {pid} ({children}; supervisor {supervisor} in {worker}) at {queued} cards"


def _kill_worker(case: Case, *, restart: bool = True) -> tuple[str, dict[str, Any], str]:
    """At half the last run's cards, ``kill -9`` of the Celery worker running its task, with its pool,
    supervisor and task processes, and (``restart``) a new one at once: the worker, the task instance just
    before the kill, and what was done."""
    services = case.services
    queued = case.at_half()
    workers = {services.procs[name].pid: name for name in WORKERS}
    ti = case.api.task_instance(case.dag_id, case.runs[-1])
    pid = ti.get("pid")
    victim = next((workers[p] for p in ancestors(pid) if p in workers), None) if pid else None
    if victim is None:  # the busy worker has the task's supervisor and task processes beside its pool
        alive = [name for name in WORKERS if services.procs[name].poll() is None]
        victim = max(alive, key=lambda name: len(session_members(services.procs[name].pid)))
    killed = services.kill_tree(victim)
    if restart:
        services.start_airflow(victim)
    return victim, ti, f"kill -9 {victim} ({len(killed)} processes, task pid {pid}) at {queued} cards"


def faketime_env() -> dict[str, str]:
    """The environment that runs a process, and every process it starts, :data:`SKEW` behind (libfaketime,
    as Debian's ``faketime -f`` sets it); the monotonic clock left alone, as a wrong wall clock leaves it."""
    libraries = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not libraries:
        raise ScenarioError("libfaketime not installed (Debian's faketime)")
    return {"LD_PRELOAD": libraries[0], "FAKETIME": SKEW, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _where(case: Case, ti: dict[str, Any]) -> str:
    """Where a running try's task process is, and whether libfaketime is loaded in it (``/proc/PID/maps``; its
    ``environ`` cannot tell: setproctitle writes the process title over it)."""
    pid, services = ti["pid"], case.services
    chain = ancestors(pid)
    worker = next((name for name in WORKERS if services.procs[name].pid in chain), None)
    if worker != "worker2":
        raise ScenarioError(f"try {ti['try_number']} (task pid {pid}) ran under {worker}, not the skewed worker2")
    try:
        loaded = "libfaketime" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return f"try {ti['try_number']} ran under worker2 (task pid {pid}, gone before /proc could be read)"
    if not loaded:
        raise ScenarioError(f"try {ti['try_number']}'s task process {pid} under worker2 has no libfaketime loaded")
    return f"try {ti['try_number']} ran under worker2, libfaketime loaded in its task process {pid}"


def _clocks(case: Case, ti: dict[str, Any], seen: datetime) -> str:
    """How far behind the drill's clock the retry's clocks were, ``seen`` being when the drill saw it running:
    the first line its task process logged (``logger: task``, stamped in the task process) and its
    ``start_date`` (its supervisor's clock, in Airflow 3). Both must be about :data:`SKEW` behind."""
    folder = case.services.home / "logs" / f"dag_id={case.dag_id}" / f"run_id={case.runs[-1]}" / "task_id=send"
    lines = (json.loads(line) for line in (folder / f"attempt={ti['try_number']}.log").read_text().splitlines())
    first = next((line["timestamp"] for line in lines if line.get("logger") == "task" and "timestamp" in line), None)
    if first is None:
        raise ScenarioError(f"try {ti['try_number']} logged no line of its task process")
    task = (seen - datetime.fromisoformat(first)).total_seconds()
    start = (seen - datetime.fromisoformat(ti["start_date"])).total_seconds()
    said = f"the task process's first log line {task:.1f} s, start_date {start:.1f} s behind the drill's clock"
    if not SKEW_SECONDS - 5 <= task <= SKEW_SECONDS + 10:
        raise ScenarioError(f"try {ti['try_number']}'s clock is not {SKEW} off: {said}")
    return said


def _rendered(ti: dict[str, Any]) -> list[str]:
    """The recipients a try rendered, in order, as far as its ``rendered_fields`` show them (Airflow keeps
    the first ``[core] max_templated_field_length`` characters of a long field)."""
    return re.findall(r"7901\d{7}", str((ti.get("rendered_fields") or {}).get("recipients", "")))


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


SCENARIOS: dict[str, Callable[[Case], None]] = {
    "baseline": baseline,
    "clear_succeeded": clear_succeeded,  # after baseline, whose run it clears; twice then takes that run
    "twice": twice,
    "kill_task": kill_task,
    "kill_worker": kill_worker,
    "shuffled": shuffled,
    "shuffled_twice": shuffled_twice,
    "skewed": skewed,  # restarts both workers
    "restart_scheduler": restart_scheduler,
    "restart_gateway": restart_gateway,
    "clear_other": clear_other,
    "clear_failed": clear_failed,
}
