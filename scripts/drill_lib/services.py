"""The drill's services on 127.0.0.1: PostgreSQL, Redis and Airflow's processes, each with its own log file.

Every process is started in a session of its own and remembered; :meth:`Services.stop_all` ends them and
anything they left behind in those sessions (a task process whose worker died), so nothing outlives the drill.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drill_lib.releases import Release

LOOPBACK = "127.0.0.1"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class DrillError(RuntimeError):
    """A service did not come up, or a step did not finish in time: the message says which, with a log tail."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(f"    | {line}" for line in text)


def wait_for(what: str, check, timeout: float, log: Path | None = None, interval: float = 0.25):
    """Poll ``check()`` until it returns something truthy, at most ``timeout`` seconds; return that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except DrillError:
            raise
        except Exception as error:
            last, value = error, None
        if value:
            return value
        time.sleep(interval)
    hint = f"\n  last error: {last!r}" if last else ""
    if log is not None:
        hint += f"\n  tail of {log}:\n{tail(log)}"
    raise DrillError(f"{what}: not ready after {timeout:.0f} s{hint}")


def _pg_tool(name: str) -> str:
    found = PG_BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


class Services:
    """Owns the drill's temp dir, its ports and its processes."""

    def __init__(self, root: Path, dags_folder: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.dags_folder = dags_folder
        self.pg_port, self.redis_port, self.api_port = free_port(), free_port(), 0
        self.pg_data = root / "pgdata"
        self.release: Release | None = None  # the Airflow release running (:meth:`use`)
        self.home = root / "airflow"
        self.db_name, self.redis_db, self.fernet_key = "airflow", 0, ""
        self.api_password = secrets.token_hex(12)
        self.procs: dict[str, subprocess.Popen] = {}
        self.log_starts: dict[str, int] = {}  # where in its log each Airflow process's last start begins
        self.sessions: set[int] = set()
        self.pg_started = False
        self.env: dict[str, str] = {}

    # ---- PostgreSQL and Redis ---------------------------------------------------------------------

    def _as_postgres(self, *command: str, log: Path) -> None:
        """PostgreSQL refuses to run as root: its tools run as the ``postgres`` user when we are root."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with log.open("a") as output:
            done = subprocess.run([*prefix, *command], stdout=output, stderr=subprocess.STDOUT, timeout=120)
        if done.returncode:
            raise DrillError(f"`{' '.join(command)}` failed ({done.returncode}):\n{tail(log)}")

    def start_postgres(self) -> None:
        log = self.logs / "postgres.log"
        self.pg_data.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.pg_data, "postgres", "postgres")
            os.chmod(self.root, 0o755)  # postgres must reach its data dir and log file
            log.touch()
            shutil.chown(log, "postgres", "postgres")
        self._as_postgres(
            _pg_tool("initdb"), "-D", str(self.pg_data), "-U", "airflow", "--auth=trust", "-E", "UTF8", log=log
        )
        options = f"-c listen_addresses={LOOPBACK} -p {self.pg_port} -c unix_socket_directories='' -c fsync=off"
        options += " -c max_connections=200 -c synchronous_commit=off"
        self._as_postgres(_pg_tool("pg_ctl"), "-D", str(self.pg_data), "-l", str(log), "-o", options, "start", log=log)
        self.pg_started = True
        isready = [_pg_tool("pg_isready"), "-h", LOOPBACK, "-p", str(self.pg_port), "-q"]
        wait_for("PostgreSQL (pg_isready)", lambda: subprocess.run(isready).returncode == 0, 30, log)
        createdb = [_pg_tool("createdb"), "-h", LOOPBACK, "-p", str(self.pg_port), "-U", "airflow", "airflow"]
        self._as_postgres(*createdb, log=log)

    def start_redis(self) -> None:
        log = self.logs / "redis.log"
        self.start(
            "redis",
            ["redis-server", "--bind", LOOPBACK, "--port", str(self.redis_port), "--save", "", "--appendonly", "no"],
            log=log,
            env=self.plain_env(),
            cwd=self.root,
        )
        ping = ["redis-cli", "-h", LOOPBACK, "-p", str(self.redis_port), "ping"]
        wait_for("Redis (redis-cli ping)", lambda: b"PONG" in subprocess.run(ping, capture_output=True).stdout, 30, log)

    # ---- Airflow --------------------------------------------------------------------------------

    def use(self, release: Release, extra_env: dict[str, str]) -> None:
        """Set up for one Airflow release: its own database (in the one PostgreSQL), Redis database, home,
        REST API port and settings; ``extra_env`` (the connections, the recipients) goes to all its processes.
        The previous release's processes must have been stopped (:meth:`stop_airflow`)."""
        first = self.release is None
        self.release = release
        self.db_name = "airflow" if first else f"airflow_{release.version.replace('.', '_')}"
        self.redis_db += 0 if first else 1
        self.home = self.root / f"airflow-{release.version}"
        self.api_port = free_port()
        if not first:
            createdb = [_pg_tool("createdb"), "-h", LOOPBACK, "-p", str(self.pg_port), "-U", "airflow", self.db_name]
            self._as_postgres(*createdb, log=self.logs / "postgres.log")
        from cryptography.fernet import Fernet

        self.fernet_key = Fernet.generate_key().decode()
        env = self.plain_env()
        env.update({f"AIRFLOW__{key}": value for key, value in release.settings(self).items()})
        env.update(extra_env)
        env["AIRFLOW_HOME"] = str(self.home)
        self.env = env

    def airflow(self, *args: str, timeout: float = 300) -> None:
        log = self.logs / f"airflow-cli-{self.release.version}.log"
        with log.open("a") as output:
            done = subprocess.run(
                [self.release.python, "-m", "airflow", *args],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                cwd=self.root,
            )
        if done.returncode:
            raise DrillError(f"`airflow {' '.join(args)}` failed ({done.returncode}):\n{tail(log)}")

    def start_airflow(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        """Start one of the release's processes (``extra_env`` on top of its settings: faketime's, say)."""
        env = {**self.env, **(extra_env or {})}
        log = self.log(name)
        self.log_starts[name] = log.stat().st_size if log.exists() else 0
        self.start(name, self.release.command(name, self), log=log, env=env)

    def worker_ready(self, name: str) -> bool:
        """Whether a Celery worker started last logged its ``ready.`` (a :class:`DrillError` if it exited)."""
        self.check_alive(name)
        with self.log(name).open(errors="replace") as log:
            log.seek(self.log_starts.get(name, 0))
            return " ready." in log.read()

    def stop_airflow(self) -> None:
        """Stop the release's processes (and whatever they left in their sessions), and forget them."""
        names = [name for name in self.procs if name in self.release.processes]
        self.stop(names)
        for name in names:
            del self.procs[name]

    def plain_env(self) -> dict[str, str]:
        """The drill's own environment without Airflow's settings, for the services that are not Airflow."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env["NO_PROXY"] = env["no_proxy"] = "*"
        return env

    def start(self, name: str, command: list[str], *, log: Path, env: dict[str, str] | None = None, cwd=None) -> None:
        with log.open("a") as output:
            proc = subprocess.Popen(
                command,
                env=env or self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cwd or self.root,
            )
        self.procs[name] = proc
        self.sessions.add(proc.pid)

    def log(self, name: str) -> Path:
        """A process's log file: an Airflow process's is named after its release too (``worker1-3.3.2``)."""
        if self.release is not None and name in self.release.processes:
            name = f"{name}-{self.release.version}"
        return self.logs / f"{name}.log"

    def check_alive(self, *names: str) -> None:
        """Raise a :class:`DrillError` with its log's tail if one of these processes (default: all) exited."""
        for name, proc in self.procs.items():
            if names and name not in names:
                continue
            if proc.poll() is not None:
                raise DrillError(f"{name} exited ({proc.returncode}):\n{tail(self.log(name))}")

    # ---- killing ----------------------------------------------------------------------------------

    def kill_tree(self, name: str) -> list[int]:
        """SIGKILL a process and every process of its session (a machine losing it): the pids killed."""
        proc = self.procs[name]
        pids = session_members(proc.pid)
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return pids

    def stop(self, names: list[str]) -> None:
        """SIGTERM these processes, a short grace (throw-away services), then SIGKILL what is left of their
        sessions, their own children included."""
        procs = [self.procs[name] for name in names]
        for proc in procs:
            if proc.poll() is None:
                _kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in procs:
            for pid in session_members(proc.pid):
                _kill(pid, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def stop_all(self) -> None:
        self.stop(list(self.procs))
        for session in self.sessions:  # processes started before and replaced (a killed worker's orphans)
            for pid in session_members(session):
                _kill(pid, signal.SIGKILL)
        if self.pg_started:
            try:
                self._as_postgres(
                    _pg_tool("pg_ctl"), "-D", str(self.pg_data), "-m", "immediate", "stop", log=self.logs / "pg.log"
                )
            except (DrillError, subprocess.TimeoutExpired) as error:
                print(f"stopping PostgreSQL: {error}", file=sys.stderr)
            self.pg_started = False


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def session_members(session: int) -> list[int]:
    """The pids whose session id is ``session`` (processes started with ``start_new_session``), leader first."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # after the name: state ppid pgrp session ...
            members.append(int(entry.name))
    return sorted(members, key=lambda pid: pid != session)


def kill_pids(pids: list[int]) -> None:
    """SIGKILL each of these processes (those already gone are skipped)."""
    for pid in pids:
        _kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """``pid`` and its children, their children and so on, parents first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop(0))
        todo.extend(parents.get(found[-1], []))
    return found


def ancestors(pid: int) -> list[int]:
    """``pid`` and its parents up to init."""
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return chain
