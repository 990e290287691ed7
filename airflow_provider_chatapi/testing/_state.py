"""The stand-in's state on disk (``--state FILE``), kept across a restart, a killed process's included.

What is kept: the requests received (as received, the token in the query included: it is the stand-in's
own), the cards accepted (every field of :class:`QueuedMessage`, the message numbers with them), and the
acks' clock (when each card was queued, how often ``hookInfo`` was asked about it), so that ``messages``,
``showMessagesQueue`` and ``hookInfo`` answer after a restart as they would have before it. Faults waiting
to be answered are not kept: a restarted gateway answers normally.

Two files:

- ``FILE``: a JSON snapshot, written atomically (a temporary file beside it, then ``os.replace``) at start,
  at a clean stop, and at most every :data:`FLUSH_INTERVAL` seconds while changes come in (less often
  when a snapshot takes long: at most a tenth of the time goes to them);
- ``FILE.journal``: one JSON line per change since that snapshot, appended with a single ``write`` under
  the gateway's lock, before the request that made the change is answered. The kernel keeps what was
  written, so a process killed at any moment (SIGKILL) loses nothing it answered; there is no ``fsync``,
  so a power cut may. Each line has a sequence number, and a snapshot names the last it holds: a journal
  left behind by a process killed between the two steps of a snapshot is not applied twice.

At start the snapshot is read and the journal replayed onto it (a torn last line, half written when the
process was killed, is left out), and a new snapshot replaces both. While it runs, each change goes to the
journal and onto the same JSON, kept in memory, that the next snapshot writes: a snapshot never reads the
gateway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_chatapi.testing._gateway import QueuedMessage
from airflow_provider_chatapi.testing._server import RecordedRequest

if TYPE_CHECKING:
    from airflow_provider_chatapi.testing._gateway import StandInGateway

__all__ = ["FLUSH_INTERVAL", "State"]

FLUSH_INTERVAL = 1.0  # seconds between two snapshots while changes come in (the journal holds the rest)
VERSION = 1


class State:
    """A stand-in gateway's state in ``path`` and ``path.journal`` (see the module's text).

    ``State(path).attach(gateway)`` loads it into a gateway not yet started, and writes down its changes
    from then on; :meth:`close` writes a last snapshot.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_name(f"{self.path.name}.journal")
        self._lock = threading.Lock()  # taken after the gateway's lock, never before it
        self._data: dict[str, Any] = {}  # what the next snapshot writes
        self._dirty = False
        self._fd = -1  # the journal, open from attach() to close()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every_interval, name="chatapi-stand-in-state", daemon=True)

    def attach(self, gateway: StandInGateway) -> State:
        self._data = data = {"version": VERSION, "dialect": gateway.dialect, **self.load()}
        if data["dialect"] != gateway.dialect:
            raise ValueError(f"{self.path} holds a {data['dialect']} gateway's state, not {gateway.dialect}'s")
        requests = [{**value, "body": value["body"].encode("utf-8", "surrogateescape")} for value in data["requests"]]
        messages = [
            {**value, "contact_ids": tuple(value["contact_ids"]), "contacts": tuple(value["contacts"])}
            for value in data["messages"]
        ]
        with gateway._lock:
            gateway._requests[:] = [RecordedRequest(**fields) for fields in requests]
            gateway._messages[:] = [QueuedMessage(**fields) for fields in messages]
            gateway._queued_at.update(data["queued_at"])
            gateway._polls.update(data["polls"])
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.snapshot()
        gateway._journal = self._write
        self._flusher.start()
        return self

    def close(self) -> None:
        """Stop writing snapshots in the background, and write a last one."""
        self._stop.set()
        self._flusher.join()
        self.snapshot()
        with self._lock:
            os.close(self._fd)
            self._fd = -1

    def load(self) -> dict[str, Any]:
        """The snapshot with the journal replayed onto it; empty when there is neither."""
        data: dict[str, Any] = {"seq": 0, "requests": [], "messages": [], "queued_at": {}, "polls": {}}
        if self.path.exists():
            data.update(json.loads(self.path.read_text(encoding="utf-8")))
        journal = self.journal_path.read_text(encoding="utf-8") if self.journal_path.exists() else ""
        for line in journal.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                break  # the last line, torn by a kill in the middle of its write
            if record["seq"] > data["seq"]:
                _apply(data, record)
        return data

    def snapshot(self) -> None:
        """Write the whole state to the file atomically, and start the journal again empty."""
        with self._lock:
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(self._data), encoding="utf-8")
            os.replace(temporary, self.path)
            os.ftruncate(self._fd, 0)  # O_APPEND: the next line goes at the new end
            self._dirty = False

    def _write(self, event: str, value: Any) -> None:
        if event == "request":
            value = value.as_json()
        elif event == "message":
            value = dataclasses.asdict(value)
        with self._lock:
            if self._fd < 0:
                return  # closed: the process is stopping
            record = {"seq": self._data["seq"] + 1, "event": event, "value": value}
            os.write(self._fd, (json.dumps(record) + "\n").encode())
            _apply(self._data, record)
            self._dirty = True

    def _flush_every_interval(self) -> None:
        # A snapshot holds up the gateway's changes while it is written: with a large state, write it less
        # often (at most a tenth of the time); the journal holds every change meanwhile.
        pause = FLUSH_INTERVAL
        while not self._stop.wait(pause):
            if self._dirty:
                started = time.monotonic()
                with contextlib.suppress(OSError):  # a full disk: the journal still holds every change
                    self.snapshot()
                pause = max(FLUSH_INTERVAL, 10 * (time.monotonic() - started))


def _apply(data: dict[str, Any], record: dict[str, Any]) -> None:
    """One journal line's change, as the gateway made it."""
    data["seq"], event, value = record["seq"], record["event"], record["value"]
    if event in ("request", "message"):
        data[f"{event}s"].append(value)
    elif event == "deliver":
        for message in data["messages"]:
            message["delivered"] = True
    elif event == "reset":
        data["requests"], data["messages"] = [], []
    else:  # queued_at, polls: (message id, value)
        data[event][value[0]] = value[1]
