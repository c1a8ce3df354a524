"""Drive a test caller process (caller.py or the Go caller) from a test, over JSON lines.

Why synchronous: the callers and the worker are separate processes, so a test may block while
it waits for what a caller hears; a reader thread collects every event so none is missed
between two waits. Event times (`t`) are CLOCK_MONOTONIC seconds, comparable with
`time.monotonic()` in the test process.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .process import NsProcess

# RFC 4733 event codes; keys A-D are sent lowercase or a SIP gateway drops them.
DTMF_CODES: dict[str, int] = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "a": 12, "b": 13, "c": 14, "d": 15}


class CallerError(AssertionError):
    """A caller did not report what a test waited for (an AssertionError: it fails the test)."""


@dataclass(frozen=True)
class Event:
    """One JSON line from a caller: `name` (its "event"), `t`, and all its fields in `data`."""

    name: str
    t: float
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass(frozen=True)
class Dtmf:
    digit: str
    code: int
    participant: str | None  # None when a server SDK sent it
    t: float


@dataclass(frozen=True)
class Tone:
    """A heard segment: `freq` is None for non-tonal sound; `end` None while it still plays."""

    freq: float | None
    start: float
    end: float | None
    participant: str
    rms_db: float

    def matches(self, freq: float, tolerance: float = 15.0) -> bool:
        return self.freq is not None and abs(self.freq - freq) <= tolerance


class CallerProcess:
    """A running caller; create it with `Stack.caller()` / `Stack.go_caller()`."""

    def __init__(self, process: NsProcess, *, identity: str, room: str) -> None:
        self.process = process
        self.identity = identity
        self.room = room
        self._events: list[Event] = []
        self._noise: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, name=f"caller-{identity}", daemon=True)
        self._reader.start()

    # --- reading -----------------------------------------------------------------------------
    def _read(self) -> None:
        stdout = self.process.popen.stdout
        assert stdout is not None
        try:
            for raw in stdout:
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                    event = Event(name=str(obj.pop("event")), t=float(obj.pop("t", 0.0)), data=obj)
                except (ValueError, KeyError, AttributeError):
                    with self._cond:
                        self._noise.append(line)
                    continue
                with self._cond:
                    self._events.append(event)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # pipe closed by stop()
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def events(self, name: str | None = None, since: int = 0) -> list[Event]:
        """Events so far (optionally only `name`), from index `since` (see `mark`)."""
        with self._cond:
            return [e for e in self._events[since:] if name is None or e.name == name]

    def mark(self) -> int:
        """Index of the next event: pass it as `since` to wait only for what comes after now."""
        with self._cond:
            return len(self._events)

    def wait_for(
        self,
        name: str,
        timeout: float = 10.0,
        *,
        since: int = 0,
        where: Callable[[Event], bool] | None = None,
        **fields: Any,
    ) -> Event:
        """First event `name` (from index `since`) whose fields equal `fields` and passes `where`.

        Raises CallerError naming what was awaited, the recent events and the caller's log tail;
        also if the caller exits or reports an error for a request being waited on.
        """
        deadline = time.monotonic() + timeout

        def match(e: Event) -> bool:
            return (e.name == name and all(e.get(k) == v for k, v in fields.items())
                    and (where is None or where(e)))

        with self._cond:
            while True:
                for e in self._events[since:]:
                    if match(e):
                        return e
                    if e.name == "error" and "id" in fields and e.get("id") == fields["id"]:
                        raise CallerError(f"{self.identity}: {e.get('message')}")
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    break
                self._cond.wait(remaining)
        why = "exited" if self._eof else f"timed out after {timeout:.1f} s"
        raise CallerError(f"{self.identity} {why} waiting for {name} {fields or ''}\n{self.describe()}")

    def describe(self, events: int = 15) -> str:
        """Recent events and the log tail, for failure messages."""
        with self._cond:
            recent = self._events[-events:]
            noise = self._noise[-5:]
        lines = [f"  {e.name} t={e.t:.3f} {e.data}" for e in recent]
        out = f"last events of {self.identity}:\n" + ("\n".join(lines) or "  (none)")
        if noise:
            out += "\nnon-JSON stdout:\n  " + "\n  ".join(noise)
        return out + f"\n{self.process.describe()}, log tail:\n{self.process.log_tail(20)}"

    # --- commands ----------------------------------------------------------------------------
    def send(self, cmd: str, **fields: Any) -> int:
        """Send one command; returns its id (echoed in the reply)."""
        stdin = self.process.popen.stdin
        if stdin is None or stdin.closed:
            raise CallerError(f"{self.identity}: stdin is closed")
        with self._cond:
            self._next_id += 1
            cid = self._next_id
        stdin.write((json.dumps({"cmd": cmd, "id": cid, **fields}) + "\n").encode())
        stdin.flush()
        return cid

    def request(self, cmd: str, reply: str, timeout: float = 10.0, **fields: Any) -> Event:
        cid = self.send(cmd, **fields)
        return self.wait_for(reply, timeout, id=cid)

    def dtmf(self, digit: str, code: int | None = None) -> Event:
        """Send one key (code from the RFC 4733 table unless given); waits until it is sent."""
        fields: dict[str, Any] = {"digit": digit}
        if code is not None:
            fields["code"] = code
        return self.request("dtmf", "dtmf_sent", **fields)

    def press(self, digits: str, interval: float = 0.1) -> list[Event]:
        """Send each key of `digits` in order, `interval` seconds apart."""
        sent = []
        for i, digit in enumerate(digits):
            if i:
                time.sleep(interval)
            sent.append(self.dtmf(digit))
        return sent

    def play_tone(self, freq: float, seconds: float, amplitude: float = 0.3, wait: bool = True) -> int:
        """Publish a sine on the caller's microphone track (caller.py only); returns the id."""
        cid = self.send("tone", freq=freq, seconds=seconds, amplitude=amplitude)
        if wait:
            self.wait_for("tone_sent", seconds + 15.0, id=cid)
        return cid

    def play_audio(self, path: str, wait: bool = True, timeout: float = 30.0) -> int:
        """Publish a WAV file (say, eSpeak speech) on the caller's microphone; returns its id."""
        cid = self.send("audio", path=path)
        if wait:
            self.wait_for("audio_sent", timeout, id=cid)
        return cid

    def republish(self, first: str = "publish", timeout: float = 10.0) -> Event:
        """A new microphone track in place of the old (caller.py only): "publish" the new one
        first (a web client switching microphone), or "unpublish" the old one first."""
        return self.request("republish", "republished", timeout, first=first)

    def stats(self) -> Event:
        return self.request("stats", "stats")

    # --- what was heard ----------------------------------------------------------------------
    def received_dtmf(self, since: int = 0) -> list[Dtmf]:
        return [Dtmf(digit=e["digit"], code=int(e["code"]), participant=e.get("participant"), t=e.t)
                for e in self.events("dtmf", since)]

    def wait_for_dtmf(self, count: int, timeout: float = 10.0, since: int = 0) -> list[Dtmf]:
        """Wait until `count` DTMF events arrived (from `since`); returns them all, in order."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [e for e in self._events[since:] if e.name == "dtmf"]
                left = deadline - time.monotonic()
                if len(got) >= count or self._eof or left <= 0:
                    break
                self._cond.wait(left)
        if len(got) < count:
            raise CallerError(f"{self.identity}: {len(got)} of {count} DTMF events in {timeout:.1f} s: "
                              f"{[e.get('digit') for e in got]}\n{self.describe()}")
        return self.received_dtmf(since)

    def tones(self, since: int = 0) -> list[Tone]:
        """Finished segments (tone_end events), in order."""
        return [self._tone(e) for e in self.events("tone_end", since)]

    def wait_for_tone(self, freq: float, timeout: float = 10.0, *, since: int = 0, tolerance: float = 15.0,
                      ended: bool = False) -> Tone:
        """Wait until a tone near `freq` starts (or, with `ended`, has ended) after `since`."""
        event = self.wait_for("tone_end" if ended else "tone_start", timeout, since=since,
                              where=lambda e: e.get("freq") is not None and abs(e["freq"] - freq) <= tolerance)
        return self._tone(event)

    @staticmethod
    def _tone(e: Event) -> Tone:
        return Tone(freq=e.get("freq"), start=float(e["start"]), end=e.get("end"),
                    participant=str(e["participant"]), rms_db=float(e["rms_db"]))

    # --- ending ------------------------------------------------------------------------------
    def leave(self, timeout: float = 10.0) -> int:
        """Ask the caller to leave the room and exit; stops it by PID if it does not."""
        stdin = self.process.popen.stdin
        if self.process.alive() and stdin is not None and not stdin.closed:
            try:
                self.send("leave")
                stdin.close()
                self.process.popen.wait(timeout)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass  # it is stopped by PID below
        code = self.process.stop()
        self._reader.join(2.0)
        return code
