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
process was killed, is left out), and a new snapshot replaces both.
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
        self._seq = 0
        self._dirty = False
        self._fd = -1  # the journal, open from attach() to close()
        self._gateway: StandInGateway  # from attach() on
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_every_interval, name="chatapi-stand-in-state", daemon=True)

    def attach(self, gateway: StandInGateway) -> State:
        data = self.load()
        if data.get("dialect", gateway.dialect) != gateway.dialect:
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
        self._seq = data["seq"]
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._gateway = gateway
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
            if record["seq"] <= data["seq"]:
                continue
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
        return data

    def snapshot(self) -> None:
        """Write the whole state to the file atomically, and start the journal again empty."""
        gateway = self._gateway
        with gateway._lock:  # the gateway's lock first, as its changes take them
            self._lock.acquire()
            requests, messages = list(gateway._requests), list(gateway._messages)
            queued_at, polls = dict(gateway._queued_at), dict(gateway._polls)
        try:
            data = {
                "version": VERSION,
                "dialect": gateway.dialect,
                "seq": self._seq,
                "requests": [request.as_json() for request in requests],
                "messages": [dataclasses.asdict(message) for message in messages],
                "queued_at": queued_at,
                "polls": polls,
            }
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(data), encoding="utf-8")
            os.replace(temporary, self.path)
            os.ftruncate(self._fd, 0)  # O_APPEND: the next line goes at the new end
            self._dirty = False
        finally:
            self._lock.release()

    def _write(self, event: str, value: Any) -> None:
        if event == "request":
            value = value.as_json()
        elif event == "message":
            value = dataclasses.asdict(value)
        with self._lock:
            if self._fd < 0:
                return  # closed: the process is stopping
            self._seq += 1
            os.write(self._fd, (json.dumps({"seq": self._seq, "event": event, "value": value}) + "\n").encode())
            self._dirty = True

    def _flush_every_interval(self) -> None:
        # A snapshot holds up the gateway while it is written: with a large state, write it less often
        # (at most a tenth of the time); the journal holds every change meanwhile.
        pause = FLUSH_INTERVAL
        while not self._stop.wait(pause):
            if self._dirty:
                started = time.monotonic()
                with contextlib.suppress(OSError):  # a full disk: the journal still holds every change
                    self.snapshot()
                pause = max(FLUSH_INTERVAL, 10 * (time.monotonic() - started))
