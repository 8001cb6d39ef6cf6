"""EventStream: the one write path of training runs and evaluation workers.

Calls on the stream only append items (a series point, a sample, a log line, or an event such as a
status change) to a bounded in-memory buffer. A background thread folds consecutive points, samples
and log lines into one event each, numbers every event with the buffer position of its last item
(its ``seq``: strictly increasing, and the same however a batch is cut), and posts batches to
``POST /api/runs/{id}/events``. The server applies only events above the stream's highest applied
``seq``, so a retried or re-cut batch is stored once.

What happens to a batch the server does not take:

- the server is unreachable: retried with backoff, for as long as it takes (a restart loses nothing);
- the server refuses it the same way twice (a 4xx, or a 5xx that repeats), or it is over the size
  limit: it is split, in order, until the item at fault is alone; that item is dropped, counted, and
  logged on the run with the reason, and everything else is stored (one bad value costs only itself;
  a lone item whose 5xx repeats is dropped only if a heartbeat gets through, else the server is sick
  and the item waits);
- the attempt is stale (409: the run moved on to another attempt): the stream stops, dropping what
  it holds, and :attr:`stale` says why, so the worker can stop too.

When it has nothing to send the thread posts an empty batch every quarter lease (a heartbeat): the
server declares an attempt lost when it hears nothing for a lease.

>>> stream = EventStream(client, run_id=7)
>>> stream.series("loss", 10, 1.93)
>>> stream.flush()
Delivery(stored=1, rejected=0, dropped=0, pending=0)
>>> stream.close()
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalhub.client import backoff_delay, check_number
from evalhub.errors import (
    ConnectionFailed,
    EvalhubError,
    InvalidValue,
    PayloadTooLarge,
    ServerError,
)
from evalhub.protocol import INT64_MAX, INT64_MIN, NAME_MAX

if TYPE_CHECKING:
    from evalhub.client import Client

log = logging.getLogger("evalhub.events")

Point = tuple[str, int, float, float]

_LIVE: weakref.WeakSet[EventStream] = weakref.WeakSet()
# How long interpreter exit waits for unsent events (a server that is down would otherwise hang it).
_ATEXIT_TIMEOUT = float(os.environ.get("EVALHUB_EXIT_FLUSH_TIMEOUT", "30"))
_DEFAULT_HEARTBEAT_S = 15.0
_MAX_REASONS = 20


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
        except (TypeError, ValueError, OverflowError):
            raise InvalidValue(f"step must be an integer, got {step!r}") from None
    if not INT64_MIN <= step <= INT64_MAX:
        raise InvalidValue(f"step {step} is outside the 64-bit range the server stores")
    return int(step)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > NAME_MAX:
        raise InvalidValue(
            f"a series or metric key must be a non-empty string of at most {NAME_MAX} chars, got {key!r}"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(f"key {key!r} is not valid Unicode (a lone surrogate)") from None
    return key


class _Fold:
    """A buffered item that folds with its neighbours of the same kind into one event."""

    __slots__ = ("internal", "kind", "value")

    def __init__(self, kind: str, value: dict[str, Any], internal: bool = False) -> None:
        self.kind = kind  # "samples" | "log" | "cache"
        self.value = value
        self.internal = internal  # a line evalhub logs about the stream itself (never logged again)


_FOLD_FIELD = {"samples": "samples", "log": "lines", "cache": "entries"}
_FOLD_MAX = {"samples": 500, "log": 1000, "cache": 1000}


@dataclass
class Delivery:
    """What became of the items a stream was given, so far.

    ``stored``: acknowledged by the server (applied, or already there from a retry); ``rejected``:
    status changes the run's state machine refused (e.g. ``completed`` after a cancel); ``dropped``:
    items the server refused or that could not be sent, with the first ``reasons``; ``pending``: not
    yet acknowledged. ``stale`` says why the stream stopped, if its attempt was superseded.
    """

    stored: int = 0
    rejected: int = 0
    dropped: int = 0
    pending: int = 0
    reasons: list[str] = field(default_factory=list)
    stale: str | None = None

    @property
    def lost(self) -> int:
        """Items that will never be stored: dropped, or pending on a stream that was given up."""
        return self.dropped

    def __repr__(self) -> str:
        return (
            f"Delivery(stored={self.stored}, rejected={self.rejected}, dropped={self.dropped}, "
            f"pending={self.pending}" + (f", stale={self.stale!r}" if self.stale else "") + ")"
        )


class _Outcome:
    __slots__ = ("answer", "kind", "reason")

    def __init__(self, kind: str, reason: str = "", answer: Any = None) -> None:
        self.kind = kind  # "ok" | "refused" (its content) | "stop" (nothing can be written) | "given_up"
        self.reason = reason
        self.answer = answer


class EventStream:
    """Buffered, batched, retried event writer for one run (and, for a worker, one attempt).

    ``stream`` names this writer (``client-<uuid>`` by default; a worker uses ``attempt-<n>``);
    ``attempt`` is the run attempt it writes for (the server refuses a stale one). ``max_buffer_events``
    bounds memory: when the buffer is full, producers block until the background thread has sent
    some. ``flush_interval`` is the longest an item waits before it is sent.
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
        attempt: int | None = None,
        heartbeat: bool = True,
    ) -> None:
        self.client = client
        self.run_id = int(run_id)
        self.stream = stream or f"client-{uuid.uuid4().hex}"
        self.attempt = attempt
        self.flush_interval = flush_interval
        self.max_batch_events = max(1, max_batch_events)
        self.max_batch_points = max(1, max_batch_points)
        self.max_buffer_events = max(self.max_batch_points, max_buffer_events)
        self.max_backoff = max_backoff
        self.heartbeat = heartbeat
        self.heartbeat_s = _DEFAULT_HEARTBEAT_S
        self._path = f"/runs/{self.run_id}/events"
        self._cond = threading.Condition(threading.Lock())
        self._buf: list[Any] = []  # Point tuples, _Fold items and event dicts, in the order they were made
        self._enqueued = 0  # items ever buffered
        self._taken = 0  # items ever taken out of the buffer (the seq base of the next batch)
        self._done = 0  # items acknowledged by the server, or given up on
        self._flush_now = False
        self._closing = False
        self._give_up = False
        self._stale: str | None = None
        self._run_status: str | None = None
        self._delivery = Delivery()
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"evalhub-events-{self.run_id}", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"EventStream(run_id={self.run_id}, stream={self.stream!r}, pending={self.pending})"

    # -- state ---------------------------------------------------------------------------------------

    @property
    def run_status(self) -> str | None:
        """The server's latest word on the run's status (a cancel shows up here)."""
        return self._run_status

    @property
    def stale(self) -> str | None:
        """Why the server takes no more events of this stream, or None: its attempt is not the run's
        current one (409), the run is gone (404) or the token is not valid (401)."""
        return self._stale

    @property
    def pending(self) -> int:
        """Items buffered or in flight, not yet acknowledged."""
        return self._enqueued - self._done

    @property
    def dropped(self) -> int:
        """Items that will not be stored (refused by the server, or unsendable)."""
        return self._delivery.dropped

    def delivery(self) -> Delivery:
        """A snapshot of what became of this stream's items."""
        with self._cond:
            d = self._delivery
            return Delivery(d.stored, d.rejected, d.dropped, self.pending, list(d.reasons), self._stale)

    # -- producers ---------------------------------------------------------------------------------

    def _put(self, items: list[Any], internal: bool = False) -> None:
        with self._cond:
            if self._closing and not internal:  # the stream's own notes may still go out while closing
                raise EvalhubError(f"event stream {self.stream!r} of run {self.run_id} is closed")
            if self._stale is not None:  # nothing of a superseded attempt is stored any more
                self._enqueued += len(items)
                self._done += len(items)
                self._delivery.dropped += len(items)
                return
            before = len(self._buf)
            if internal or before + len(items) <= self.max_buffer_events:  # the common case: room to spare
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
        self,
        status: str,
        *,
        worker: Mapping[str, Any] | None = None,
        error: str | None = None,
        work_key: str | None = None,
    ) -> None:
        """Queue a status change (``running``, ``completed``, ``failed``, ``cancelled``); ``work_key``
        says what the attempt computes (see reuse in docs/rest-api.md)."""
        event: dict[str, Any] = {
            "type": "status",
            "status": status,
            "worker": dict(worker) if worker else None,
            "error": error,
        }
        if work_key is not None:
            event["work_key"] = work_key
        self._put([event])

    def progress(self, done: int, total: int | None) -> None:
        """Queue a progress update (``done`` of ``total`` items)."""
        self._put([{"type": "progress", "done": int(done), "total": None if total is None else int(total)}])

    def metrics(self, values: Mapping[str, Any], higher_is_better: Mapping[str, bool] | None = None) -> None:
        """Queue summary metrics (a later value of a key replaces the earlier one; NaN/±inf are values)."""
        checked = {_check_key(k): check_number(k, v) for k, v in values.items()}
        event: dict[str, Any] = {"type": "metrics", "values": checked}
        if higher_is_better:
            event["higher_is_better"] = {k: bool(v) for k, v in higher_is_better.items() if k in checked}
        self._put([event])

    def series(self, key: str, step: int, value: Any, wall_time: float | None = None) -> None:
        """Queue one series point; a bad key, step or value raises :class:`InvalidValue` at once."""
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
        batch: list[Any] = []
        for s in samples:
            sample = dict(s)
            key = sample.get("sample_key", "?")
            for name, value in (sample.get("scores") or {}).items():
                sample["scores"][name] = check_number(f"sample {key} score {name}", value)
            for name in ("primary_score", "latency_ms"):
                if sample.get(name) is not None:
                    sample[name] = check_number(f"sample {key} {name}", sample[name])
            batch.append(_Fold("samples", sample))
        if batch:
            self._put(batch)

    def log(self, message: str, level: str = "info") -> None:
        """Queue a log line."""
        self._put([_Fold("log", {"level": level, "message": str(message), "wall_time": time.time()})])

    def cache(self, entries: Mapping[str, str]) -> None:
        """Queue answers of model requests for the project's request cache (``{key: JSON text}``)."""
        batch: list[Any] = [_Fold("cache", {"key": k, "value": v}) for k, v in entries.items()]
        if batch:
            self._put(batch)

    def artifact(self, name: str, uri: str) -> None:
        """Queue a reference to an artifact of the run."""
        self._put([{"type": "artifact", "name": name, "uri": uri}])

    # -- flushing ----------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> Delivery:
        """Block until everything queued before this call is acknowledged (or given up on); returns
        what became of the stream's items so far (stored, rejected, dropped).

        Raises :class:`ConnectionFailed` if ``timeout`` passes first (nothing is dropped then: the
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
        return self.delivery()

    def close(self, timeout: float | None = 30.0) -> Delivery:
        """Flush and stop the background thread. Idempotent; also run at interpreter exit."""
        with self._cond:
            if self._closing and not self._thread.is_alive():
                return self.delivery()
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
        return self.delivery()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the background thread ---------------------------------------------------------------------

    def _take(self) -> tuple[list[Any], int] | None:
        """Wait for a batch worth sending and take it from the buffer: (items, seq base).

        An empty list is a heartbeat (nothing to send for a while); None means stop.
        """
        with self._cond:
            deadline = time.monotonic() + self.flush_interval
            idle_since = time.monotonic()
            while True:
                if self._buf:
                    if self._flush_now or self._closing or len(self._buf) >= self.max_batch_points:
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                else:
                    if self._closing or self._stale is not None:
                        return None
                    self._flush_now = False
                    if self.heartbeat and time.monotonic() - idle_since >= self.heartbeat_s:
                        return [], self._taken
                    self._cond.wait(min(self.flush_interval, self.heartbeat_s))
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
            base = self._taken
            self._taken += len(items)
            if not self._buf:
                self._flush_now = False
            self._cond.notify_all()  # room for blocked producers
            return items, base

    @staticmethod
    def _fold(items: list[Any], base: int) -> tuple[list[dict[str, Any]], list[int]]:
        """The events of ``items`` (consecutive points, samples or log lines fold into one event), each
        numbered with the buffer position of its last item; and how many items each event holds."""
        events: list[dict[str, Any]] = []
        sizes: list[int] = []
        group: list[Any] = []
        kind: str | None = None

        def close_group(last: int) -> None:
            nonlocal group, kind
            if not group:
                return
            if kind == "series":
                body: dict[str, Any] = {
                    "type": "series",
                    "points": [{"key": p[0], "step": p[1], "value": p[2], "wall_time": p[3]} for p in group],
                }
            else:
                assert kind is not None
                body = {"type": kind, _FOLD_FIELD[kind]: [f.value for f in group]}
            events.append({"seq": base + last + 1, **body})
            sizes.append(len(group))
            group, kind = [], None

        for i, item in enumerate(items):
            this = "series" if type(item) is tuple else item.kind if type(item) is _Fold else None
            if this is None or this != kind or (this in _FOLD_MAX and len(group) >= _FOLD_MAX[this]):
                close_group(i - 1)
            if this is None:
                events.append({"seq": base + i + 1, **item})
                sizes.append(1)
            else:
                group.append(item)
                kind = this
        close_group(len(items) - 1)
        return events, sizes

    def _loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            items, base = taken
            if not items:
                self._beat()
                continue
            self._deliver(items, base)
            with self._cond:
                self._done += len(items)
                self._cond.notify_all()
                if self._give_up:
                    return

    def _beat(self) -> None:
        """One heartbeat: an empty batch (it renews the attempt's lease and brings the run's status)."""
        outcome = self._post([], persistent=False)
        if outcome.kind == "stop":
            self._stop(outcome.reason)

    def _deliver(self, items: list[Any], base: int) -> None:
        """Send ``items`` (taken from the buffer at ``base``) until stored, isolating what is refused."""
        events, sizes = self._fold(items, base)
        outcome = self._post(events, divisible=len(items) > 1)
        if outcome.kind == "ok":
            self._account(events, sizes, outcome.answer)
            return
        if outcome.kind == "stop":
            self._stop(outcome.reason)
            self._drop(items, outcome.reason, note=False)
            return
        if outcome.kind == "given_up":
            self._drop(
                items, outcome.reason or "the stream was closed before the server answered", note=False
            )
            return
        if len(items) == 1:
            self._drop(items, outcome.reason, note=True)
            return
        # Halves keep their order and their seq numbers (the buffer positions): the server's "above the
        # highest applied seq" rule applies each event once however often the batch is cut.
        mid = len(items) // 2
        self._deliver(items[:mid], base)
        self._deliver(items[mid:], base + mid)

    def _post(
        self, events: list[dict[str, Any]], persistent: bool = True, divisible: bool = False
    ) -> _Outcome:
        """Post one batch, retrying what may pass on a second try; what became of it.

        A refusal of the content (400, 422, 413, a repeated 5xx) lets the caller split the batch; a
        refusal of the writer (a stale attempt, a run that is gone, a token that is not valid) stops
        the stream."""
        body: dict[str, Any] = {"stream": self.stream, "events": events}
        if self.attempt is not None:
            body["attempt"] = self.attempt
        attempt = 0
        failures: dict[str, int] = {}
        while True:
            try:
                answer = self.client.request("POST", self._path, json_body=body, retries=0)
            except PayloadTooLarge as exc:
                return _Outcome("refused", f"too large for the server: {exc}")
            except ConnectionFailed as exc:
                self.last_error = str(exc)
                if not persistent:
                    return _Outcome("given_up", str(exc))
            except InvalidValue as exc:  # cannot be encoded: never sendable
                return _Outcome("refused", str(exc))
            except ServerError as exc:
                if exc.status in (401, 403, 404) or (exc.status == 409 and exc.code == "stale_attempt"):
                    return _Outcome("stop", str(exc))
                self.last_error = str(exc)
                if not persistent:
                    return _Outcome("given_up", str(exc))
                signature = f"{exc.status}:{exc}"
                failures[signature] = failures.get(signature, 0) + 1
                if failures[signature] >= 2 and (exc.status < 500 or divisible or self._server_answers()):
                    return _Outcome("refused", str(exc))
            except Exception as exc:  # a bug, not the network: try a few times, then say so loudly
                self.last_error = f"{type(exc).__name__}: {exc}"
                failures["unexpected"] = failures.get("unexpected", 0) + 1
                if failures["unexpected"] > 5:
                    log.error("evalhub: cannot send events of run %d: %s", self.run_id, self.last_error)
                    return _Outcome("refused", self.last_error)
            else:
                self.last_error = None
                if isinstance(answer, dict):
                    if answer.get("run_status"):
                        self._run_status = str(answer["run_status"])
                    lease = answer.get("lease_s")
                    if isinstance(lease, int | float) and lease > 0:
                        self.heartbeat_s = max(0.2, float(lease) / 4)
                return _Outcome("ok", answer=answer)
            attempt += 1
            with self._cond:
                if self._give_up:
                    return _Outcome("given_up", self.last_error or "")
                delay = backoff_delay(attempt, 0.1, self.max_backoff)
                self._cond.wait(delay)

    def _server_answers(self) -> bool:
        """Whether the server takes an empty batch now (then a repeated 5xx is the batch's fault)."""
        try:
            body: dict[str, Any] = {"stream": self.stream, "events": []}
            if self.attempt is not None:
                body["attempt"] = self.attempt
            self.client.request("POST", self._path, json_body=body, retries=0)
            return True
        except EvalhubError:
            return False

    def _account(self, events: list[dict[str, Any]], sizes: list[int], answer: Any) -> None:
        rejected = {int(r.get("seq", -1)): str(r.get("error")) for r in (answer or {}).get("rejected") or []}
        with self._cond:
            for event, size in zip(events, sizes, strict=True):
                if event["seq"] in rejected:
                    self._delivery.rejected += size
                else:
                    self._delivery.stored += size
        for seq, error in rejected.items():
            log.info("evalhub: run %d rejected event %s: %s", self.run_id, seq, error)

    def _stop(self, reason: str) -> None:
        """The server takes nothing more from this writer (stale attempt, run gone, bad token)."""
        with self._cond:
            if self._stale is None:
                self._stale = reason
                log.warning("evalhub: run %d: the server takes no more events of this stream: %s",
                            self.run_id, reason)  # fmt: skip
            # what is still buffered will not be stored either
            n = len(self._buf)
            if n:
                del self._buf[:]
                self._taken += n
                self._done += n
                self._delivery.dropped += n
            self._cond.notify_all()

    def _drop(self, items: list[Any], reason: str, *, note: bool) -> None:
        if all(type(i) is _Fold and i.kind == "cache" for i in items):
            # Best effort: an answer the request cache cannot take is asked of the model again next
            # time; nothing of the run is lost, so nothing is counted against it.
            log.info("evalhub: run %d: %d request-cache entries not cached: %s", self.run_id, len(items), reason)
            return
        internal = all(type(i) is _Fold and i.internal for i in items)
        with self._cond:
            self._delivery.dropped += len(items)
            self.last_error = reason
            if len(self._delivery.reasons) < _MAX_REASONS:
                self._delivery.reasons.append(f"{_describe(items[0])}: {reason}")
        if internal:
            return
        log.warning("evalhub: run %d: dropped %s: %s", self.run_id, _describe(items[0]), reason)
        if note and self._stale is None:
            # The run's own log says what was lost and why (ASCII, so the line itself is always storable).
            line = f"evalhub dropped {_describe(items[0])}: {reason}"[:4000].encode(
                "ascii", "backslashreplace"
            )
            entry = _Fold("log", {"level": "error", "message": line.decode(), "wall_time": time.time()}, True)
            self._put([entry], internal=True)


def _describe(item: Any) -> str:
    """A short, safe description of a buffered item (what a drop says it lost)."""
    if type(item) is tuple:
        return f"series point {item[0]!a} at step {item[1]}"
    if type(item) is _Fold:
        if item.kind == "samples":
            return f"sample {str(item.value.get('sample_key'))[:80]!a}"
        if item.kind == "cache":
            return f"request-cache entry {str(item.value.get('key'))[:16]!a}"
        return f"log line {str(item.value.get('message'))[:60]!a}"
    return f"{item.get('type')} event"


__all__ = ["Delivery", "EventStream"]
