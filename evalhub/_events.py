"""EventStream: the one write path of training runs and evaluation workers.

Calls on the stream only append to a bounded in-memory buffer; a background thread folds buffered
series points into one event per flush, numbers every event with a strictly increasing ``seq``, and
posts batches to ``POST /api/runs/{id}/events``. A failed post (connection error, 5xx) is retried
with backoff, with the same events and the same ``seq`` numbers, so the server (idempotent per run,
stream and seq) stores each event once: a restart of the server loses nothing and doubles nothing.

>>> stream = EventStream(client, run_id=7)
>>> stream.series("loss", 10, 1.93)
>>> stream.flush()
>>> stream.close()
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from evalhub.client import check_number
from evalhub.errors import ConnectionFailed, EvalhubError, InvalidValue, PayloadTooLarge, ServerError

if TYPE_CHECKING:
    from evalhub.client import Client

log = logging.getLogger("evalhub.events")

Point = tuple[str, int, float, float]

_LIVE: weakref.WeakSet[EventStream] = weakref.WeakSet()
# How long interpreter exit waits for unsent events (a server that is down would otherwise hang it).
_ATEXIT_TIMEOUT = float(os.environ.get("EVALHUB_EXIT_FLUSH_TIMEOUT", "30"))


def _close_all() -> None:
    for stream in list(_LIVE):
        try:
            stream.close(timeout=_ATEXIT_TIMEOUT)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


atexit.register(_close_all)


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            if float(step) != int(step):
                raise ValueError
            step = int(step)
        except (TypeError, ValueError):
            raise InvalidValue(f"step must be an integer, got {step!r}") from None
    return int(step)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > 255:
        raise InvalidValue(
            f"a series or metric key must be a non-empty string of at most 255 chars, got {key!r}"
        )
    return key


class EventStream:
    """Buffered, batched, retried event writer for one run.

    ``stream`` names this writer (``client-<uuid>`` by default; a worker uses ``attempt-<n>``).
    ``max_buffer_events`` bounds memory: when the buffer is full, producers block until the
    background thread has sent some, they never drop. ``flush_interval`` is the longest a point
    waits before it is sent; a buffer reaching ``max_batch_points`` points (or
    ``max_batch_events`` other events) is sent at once.
    """

    def __init__(
        self,
        client: Client,
        run_id: int,
        stream: str | None = None,
        flush_interval: float = 0.5,
        max_batch_events: int = 2000,
        max_buffer_events: int = 1_000_000,
        max_batch_points: int = 50_000,
        max_backoff: float = 2.0,
    ) -> None:
        self.client = client
        self.run_id = int(run_id)
        self.stream = stream or f"client-{uuid.uuid4().hex}"
        self.flush_interval = flush_interval
        self.max_batch_events = max(1, max_batch_events)
        self.max_batch_points = max(1, max_batch_points)
        self.max_buffer_events = max(self.max_batch_points, max_buffer_events)
        self.max_backoff = max_backoff
        self._path = f"/runs/{self.run_id}/events"
        self._cond = threading.Condition(threading.Lock())
        self._buf: list[Any] = []  # Point tuples and event dicts, in the order they were made
        self._enqueued = 0  # items ever buffered
        self._done = 0  # items acknowledged by the server (or given up on)
        self._seq = 0
        self._flush_now = False
        self._closing = False
        self._give_up = False
        self._run_status: str | None = None
        self.applied = 0
        self.duplicates = 0
        self.rejected: list[dict[str, Any]] = []
        self.dropped = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"evalhub-events-{self.run_id}", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"EventStream(run_id={self.run_id}, stream={self.stream!r}, pending={self.pending})"

    # -- producers ---------------------------------------------------------------------------------

    @property
    def run_status(self) -> str | None:
        """The server's latest word on the run's status (a cancel shows up here)."""
        return self._run_status

    @property
    def pending(self) -> int:
        """Items buffered or in flight, not yet acknowledged."""
        return self._enqueued - self._done

    def _put(self, items: list[Any]) -> None:
        with self._cond:
            if self._closing:
                raise EvalhubError(f"event stream {self.stream!r} of run {self.run_id} is closed")
            before = len(self._buf)
            if before + len(items) <= self.max_buffer_events:  # the common case: room to spare
                self._buf.extend(items)
                self._enqueued += len(items)
                if before < self.max_batch_points <= len(self._buf) or type(items[-1]) is not tuple:
                    self._cond.notify_all()
                return
            start = 0
            while start < len(items):
                while len(self._buf) >= self.max_buffer_events and not self._closing:
                    self._cond.notify_all()
                    self._cond.wait(1.0)
                room = self.max_buffer_events - len(self._buf)
                chunk = items[start : start + room] if start or room < len(items) else items
                before = len(self._buf)
                self._buf.extend(chunk)
                self._enqueued += len(chunk)
                start += len(chunk)
                if before < self.max_batch_points <= len(self._buf) or not isinstance(chunk[-1], tuple):
                    self._cond.notify_all()

    def event(self, event: dict[str, Any]) -> None:
        """Queue one raw event (``type`` and its fields; ``seq`` is assigned here)."""
        if "type" not in event:
            raise InvalidValue("an event needs a 'type'")
        self._put([dict(event)])

    def status(
        self, status: str, *, worker: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Queue a status change (``running``, ``completed``, ``failed``, ``cancelled``, ``queued``)."""
        self._put(
            [{"type": "status", "status": status, "worker": dict(worker) if worker else None, "error": error}]
        )

    def progress(self, done: int, total: int | None) -> None:
        """Queue a progress update (``done`` of ``total`` items)."""
        self._put([{"type": "progress", "done": int(done), "total": None if total is None else int(total)}])

    def metrics(self, values: Mapping[str, Any]) -> None:
        """Queue summary metrics (a later value of a key replaces the earlier one)."""
        checked = {_check_key(k): check_number(k, v) for k, v in values.items()}
        self._put([{"type": "metrics", "values": checked}])

    def series(self, key: str, step: int, value: Any, wall_time: float | None = None) -> None:
        """Queue one series point; NaN, infinity and non-numbers are refused here, at once."""
        point = (
            _check_key(key),
            _check_step(step),
            check_number(key, value),
            time.time() if wall_time is None else float(wall_time),
        )
        self._put([point])

    def series_many(self, points: Iterable[tuple[str, int, Any, float | None]]) -> None:
        """Queue many ``(key, step, value, wall_time)`` points at once (``wall_time`` may be None)."""
        now = time.time()
        checked: list[Any] = [
            (_check_key(k), _check_step(s), check_number(k, v), now if w is None else float(w))
            for k, s, v, w in points
        ]
        if checked:
            self._put(checked)

    def samples(self, samples: Iterable[Mapping[str, Any]]) -> None:
        """Queue per-sample results (unique per ``sample_key``: a later write replaces)."""
        batch = [dict(s) for s in samples]
        for sample in batch:
            key = sample.get("sample_key", "?")
            for name, value in (sample.get("scores") or {}).items():
                check_number(f"sample {key} score {name}", value)
            for field in ("primary_score", "latency_ms"):
                if sample.get(field) is not None:
                    check_number(f"sample {key} {field}", sample[field])
        if batch:
            self._put([{"type": "samples", "samples": batch}])

    def log(self, message: str, level: str = "info") -> None:
        """Queue a log line."""
        self._put(
            [{"type": "log", "lines": [{"level": level, "message": str(message), "wall_time": time.time()}]}]
        )

    def artifact(self, name: str, uri: str) -> None:
        """Queue a reference to an artifact of the run."""
        self._put([{"type": "artifact", "name": name, "uri": uri}])

    # -- flushing ----------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued before this call is acknowledged by the server.

        Raises :class:`ConnectionFailed` if ``timeout`` passes first (nothing is dropped: the
        background thread keeps trying).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._enqueued
            self._flush_now = True
            self._cond.notify_all()
            while self._done < target:
                if not self._thread.is_alive():
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ConnectionFailed(
                        f"{target - self._done} events of run {self.run_id} not yet acknowledged after "
                        f"{timeout}s ({self.last_error or 'server slow'}); they stay buffered and are retried"
                    )
                self._cond.wait(0.5 if remaining is None else min(0.5, remaining))

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush and stop the background thread. Idempotent; also run at interpreter exit."""
        with self._cond:
            if self._closing and not self._thread.is_alive():
                return
            self._closing = True
            self._flush_now = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                self._give_up = True
                self._cond.notify_all()
            self._thread.join(5.0)
        _LIVE.discard(self)
        if self.pending:
            log.warning(
                "evalhub: %d events of run %d could not be sent before close (%s)",
                self.pending,
                self.run_id,
                self.last_error,
            )

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the background thread ---------------------------------------------------------------------

    def _take(self) -> list[Any] | None:
        """Wait for a batch worth sending and take it from the buffer (None: stop)."""
        with self._cond:
            deadline = time.monotonic() + self.flush_interval
            while True:
                if self._buf:
                    if self._flush_now or self._closing or len(self._buf) >= self.max_batch_points:
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                else:
                    if self._closing:
                        return None
                    self._flush_now = False
                    self._cond.wait(self.flush_interval)
                    deadline = time.monotonic() + self.flush_interval
            # Up to max_batch_points items, of which at most max_batch_events are not points.
            limit = min(len(self._buf), self.max_batch_points)
            others = 0
            for i in range(limit):
                if type(self._buf[i]) is not tuple:
                    others += 1
                    if others > self.max_batch_events:
                        limit = i
                        break
            items = self._buf[:limit]
            del self._buf[:limit]
            if not self._buf:
                self._flush_now = False
            self._cond.notify_all()  # room for blocked producers
            return items

    def _fold(self, items: list[Any]) -> list[dict[str, Any]]:
        """Number the events; consecutive points fold into one ``series`` event."""
        events: list[dict[str, Any]] = []
        points: list[dict[str, Any]] = []
        for item in items:
            if type(item) is tuple:
                points.append({"key": item[0], "step": item[1], "value": item[2], "wall_time": item[3]})
                continue
            if points:
                self._seq += 1
                events.append({"seq": self._seq, "type": "series", "points": points})
                points = []
            self._seq += 1
            events.append({"seq": self._seq, **item})
        if points:
            self._seq += 1
            events.append({"seq": self._seq, "type": "series", "points": points})
        return events

    @staticmethod
    def _size(events: list[dict[str, Any]]) -> int:
        return sum(len(e["points"]) if e["type"] == "series" else 1 for e in events)

    def _loop(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            events = self._fold(items)
            self._send(events)
            with self._cond:
                self._done += len(items)
                self._cond.notify_all()
                if self._give_up:
                    return

    def _send(self, events: list[dict[str, Any]]) -> None:
        """Post ``events`` until acknowledged; split on 413; give up only on a 4xx or a forced close."""
        attempt = 0
        unexpected = 0
        while True:
            try:
                answer = self.client.request(
                    "POST", self._path, json_body={"stream": self.stream, "events": events}, retries=0
                )
            except PayloadTooLarge as exc:
                # A series event of max_batch_points points stays far below the server's limit
                # (32 MiB by default); one event alone over the limit can never be sent.
                if len(events) == 1:
                    self._drop(events, f"event too large for the server: {exc}")
                    return
                for part in self._split(events):
                    self._send(part)
                return
            except ConnectionFailed as exc:
                self.last_error = str(exc)
            except InvalidValue as exc:  # cannot be encoded: never sendable
                self._drop(events, str(exc))
                return
            except ServerError as exc:
                if exc.status < 500:
                    self._drop(events, str(exc))
                    return
                self.last_error = str(exc)
            except Exception as exc:  # a bug, not the network: retry a few times, then say so loudly
                unexpected += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if unexpected > 5:
                    log.error("evalhub: cannot send events of run %d: %s", self.run_id, self.last_error)
                    self._drop(events, self.last_error)
                    return
            else:
                self.last_error = None
                if isinstance(answer, dict):
                    self.applied += int(answer.get("applied", 0) or 0)
                    self.duplicates += int(answer.get("duplicates", 0) or 0)
                    rejected = answer.get("rejected") or []
                    if rejected:
                        self.rejected.extend(rejected)
                        for r in rejected:
                            log.warning(
                                "evalhub: run %d rejected event %s: %s",
                                self.run_id,
                                r.get("seq"),
                                r.get("error"),
                            )
                    if answer.get("run_status"):
                        self._run_status = str(answer["run_status"])
                return
            attempt += 1
            with self._cond:
                if self._give_up:
                    self.dropped += self._size(events)
                    return
                delay = min(self.max_backoff, 0.05 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2)
                self._cond.wait(delay)

    @staticmethod
    def _split(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        # Halves keep their seq numbers and their order, so the server's "above the highest
        # applied seq" rule still applies each event exactly once.
        mid = len(events) // 2
        return [events[:mid], events[mid:]]

    def _drop(self, events: list[dict[str, Any]], reason: str) -> None:
        self.dropped += self._size(events)
        self.last_error = reason
        log.warning("evalhub: dropped %d events of run %d: %s", len(events), self.run_id, reason)


__all__ = ["EventStream"]
