"""The process's one connection to Ray: started or joined once, shared by every experiment of the
process, never shut down under a live one.

Why one owner, on a thread of its own: Ray ties the node processes of a local cluster it starts
(GCS, raylet) to the *thread* that started them (Linux's parent-death signal follows the thread, not
the process). An experiment driver thread that calls ``ray.init`` and then ends takes the cluster down
with it, and a minute later Ray ends the whole process ("Failed to connect to GCS within 60
seconds"): a notebook kernel died after every experiment cell. So every ``ray.init`` and
``ray.shutdown`` of evalhub runs on one long-lived daemon thread, ``evalhub-ray``.

Experiments :meth:`~RayConnection.acquire` the connection and :meth:`~RayConnection.release` it. A
local cluster this process started is shut down when the last experiment releases it and
``EVALHUB_RAY_IDLE_S`` seconds (default 300) pass without a new one, or at exit; a cluster that was
joined (an address, ``RAY_ADDRESS``, evalhub's embedded cluster) is left (disconnected, never shut
down) after the same idle time, and a ``ray.init`` of the user's own is never touched.

Before joining, the address is tried: one that does not answer (a wrong ``RAY_ADDRESS``, or the
``ray_current_cluster`` record a killed ``ray start`` leaves in Ray's temp folder, which a plain
``ray.init()`` follows) is an error within seconds that names the address and where it came from,
never a wait of minutes. A loopback address stays loopback (see :mod:`evalhub.execution._raynode`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from evalhub.errors import EvalhubError

log = logging.getLogger("evalhub.execution")

T = TypeVar("T")


@dataclass(frozen=True)
class RayOptions:
    """How to start or join Ray (the first acquire decides; later ones share what it made)."""

    address: str | None = None
    address_source: str | None = None  # where the address came from, for the error if it does not answer
    num_cpus: int | None = None
    include_dashboard: bool | None = None
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    init_attempts: int = 3
    start_nice: int | None = None


class RayConnection:
    """Reference-counted ownership of ``ray.init``; use :func:`ray_connection` for the process's one."""

    def __init__(self, idle_s: float | None = None) -> None:
        self.idle_s = float(os.environ.get("EVALHUB_RAY_IDLE_S", "300")) if idle_s is None else idle_s
        self._lock = threading.Lock()
        self._users = 0
        self._started = False  # this process started the local cluster (and may shut it down)
        self._joined = False  # this process joined a running cluster (and leaves it when idle)
        self._options: RayOptions | None = None
        self.dashboard_url: str | None = None
        self.address: str | None = None
        self._idle_timer: threading.Timer | None = None
        self._calls: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="evalhub-ray", daemon=True)
        self._thread.start()

    # -- the owner thread ----------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            fn, answer = self._calls.get()
            try:
                answer.put((True, fn()))
            except BaseException as exc:  # handed back to the caller
                answer.put((False, exc))

    def _on_owner(self, fn: Callable[[], T], timeout: float | None = None, what: str = "") -> T:
        """Run ``fn`` on the owner thread and wait for it (at most ``timeout`` seconds)."""
        if threading.current_thread() is self._thread:
            return fn()
        answer: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._calls.put((fn, answer))
        try:
            ok, value = answer.get(timeout=timeout)
        except queue.Empty:
            raise EvalhubError(f"{what or 'a Ray call'} did not finish within {timeout:.0f}s") from None
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    # -- acquire / release ---------------------------------------------------------------------------

    def acquire(self, options: RayOptions | None = None) -> RayConnection:
        """Start or join Ray if this process is not connected yet; count one more user."""
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            opts = options or RayOptions()
            if not ray_initialized():
                # a dead address is refused here, in seconds, before Ray would wait on it for minutes
                opts = resolve_address(opts)
            if opts.address:
                what = f"joining the Ray cluster at {opts.address} ({opts.address_source or 'given'})"
                self._on_owner(lambda: self._connect(opts), timeout=CONNECT_TIMEOUT_S, what=what)
            else:
                self._on_owner(lambda: self._connect(opts))
            self._users += 1
            return self

    def release(self) -> None:
        """One user fewer; the last one out starts the idle countdown of a cluster this process started
        (shut down after it) or joined (left after it)."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users or not (self._started or self._joined):
                return
            if self.idle_s <= 0:
                self._on_owner(self._disconnect)
                return
            timer = threading.Timer(self.idle_s, self._idle)
            timer.daemon = True
            self._idle_timer = timer
            timer.start()

    @contextlib.contextmanager
    def session(self, options: RayOptions | None = None) -> Iterator[RayConnection]:
        """``with ray_connection().session(): ...`` holds Ray for the block."""
        self.acquire(options)
        try:
            yield self
        finally:
            self.release()

    @property
    def users(self) -> int:
        """How many experiments hold the connection now."""
        return self._users

    @property
    def started_here(self) -> bool:
        """Whether the cluster is a local one this process started."""
        return self._started

    def shutdown(self) -> None:
        """Leave Ray now (a local cluster this process started is stopped), whoever holds it."""
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            self._users = 0
            self._on_owner(self._disconnect)

    def _idle(self) -> None:
        with self._lock:
            if self._users == 0 and self._idle_timer is not None:
                self._idle_timer = None
                self._on_owner(self._disconnect)

    # -- on the owner thread only --------------------------------------------------------------------

    def _connect(self, options: RayOptions) -> None:
        import ray

        if ray.is_initialized():
            if self._options is None:  # the user's own ray.init(): join it as it is, never stop it
                self._options = options
                self._started = False
                self._joined = False
                self._describe(None)
            return
        os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
        address = options.address or None
        if address and _is_loopback(address):
            from evalhub.execution._raynode import keep_loopback

            keep_loopback()
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        include_dashboard = options.include_dashboard
        if include_dashboard is None and os.environ.get("EVALHUB_RAY_DASHBOARD", "").lower() in (
            "0",
            "false",
            "no",
        ):
            include_dashboard = False
        if address:
            kwargs["address"] = address
        else:  # a local cluster: Ray picks its own free ports (never Redis' 6379)
            if options.num_cpus is not None:
                kwargs["num_cpus"] = options.num_cpus
            kwargs["include_dashboard"] = include_dashboard
        kwargs.update(options.init_kwargs)
        nice = options.start_nice
        if nice is None and os.environ.get("EVALHUB_RAY_START_NICE"):
            nice = int(os.environ["EVALHUB_RAY_START_NICE"])
        ctx = None
        attempts = max(1, options.init_attempts)
        for attempt in range(1, attempts + 1):
            try:
                with _priority(nice if not address else None):
                    ctx = ray.init(**kwargs)
                break
            except Exception as exc:
                # Ray gives its node processes a fixed 30 s to come up; a machine busy with other work
                # can miss that once: start over rather than fail the experiment
                if ray.is_initialized():
                    ray.shutdown()
                if attempt == attempts or address:
                    if address:
                        raise EvalhubError(
                            f"could not join the Ray cluster at {address} ({options.address_source or 'given'}): "
                            f"{_short(exc)}"
                        ) from exc
                    raise EvalhubError(
                        f"Ray did not start (a local cluster): {_short(exc)}; is the machine overloaded? "
                        "Set RAY_ADDRESS to use a running cluster (`ray start --head`)."
                    ) from exc
                log.warning("evalhub: Ray start attempt %d failed (%s); retrying", attempt, _short(exc))
        self._options = options
        self._started = not address
        self._joined = bool(address)
        self._describe(ctx)

    def _describe(self, ctx: Any) -> None:
        import ray

        url = getattr(ctx, "dashboard_url", None)
        if url is None:
            try:
                url = ray.get_dashboard_url() or None  # type: ignore[attr-defined]
            except Exception:  # no dashboard
                url = None
        self.dashboard_url = f"http://{url}" if url and not str(url).startswith("http") else url
        try:
            self.address = str(ray.get_runtime_context().gcs_address)
        except Exception:  # older Ray
            self.address = None
        if self.dashboard_url:
            log.info("evalhub: Ray dashboard at %s", self.dashboard_url)

    def _disconnect(self) -> None:
        import ray

        if (self._started or self._joined) and ray.is_initialized():
            ray.shutdown()  # our own local cluster stops; a joined one is only left
        self._options = None
        self._started = False
        self._joined = False
        self.dashboard_url = None
        self.address = None


CONNECT_TIMEOUT_S = 55.0
PROBE_S = 8.0


def ray_initialized() -> bool:
    """``ray.is_initialized()`` without importing Ray when nothing imported it yet."""
    import sys

    module = sys.modules.get("ray")
    return bool(module is not None and module.is_initialized())


def _is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rpartition(":")[0] or address
    return host.startswith("127.") or host in ("localhost", "[::1]", "::1")


def recorded_address() -> tuple[str | None, str]:
    """The cluster a plain ``ray.init()`` would follow: Ray's ``ray_current_cluster`` record (written by
    ``ray start`` into Ray's temp folder, left behind by a killed one), and the record's path."""
    base = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    path = os.path.join(base, "ray", "ray_current_cluster")
    try:
        with open(path) as fh:
            return fh.read().strip() or None, path
    except OSError:
        return None, path


def resolve_address(options: RayOptions) -> RayOptions:
    """``options`` with the address to join and where it came from, after checking that it answers.

    The address is the one given, else ``RAY_ADDRESS``, else (for ``"auto"`` or no address at all) the
    cluster record that ``ray start`` wrote, which Ray itself would follow. An address that does not
    answer raises :class:`~evalhub.errors.EvalhubError` naming it and its source.
    """
    import dataclasses

    address, source = options.address, options.address_source
    if not address and os.environ.get("RAY_ADDRESS"):
        address, source = os.environ["RAY_ADDRESS"], "the RAY_ADDRESS environment variable"
    if not address or address == "auto":
        recorded, path = recorded_address()
        if recorded is None:
            if address == "auto":
                raise EvalhubError(f"RAY_ADDRESS=auto, but there is no Ray cluster record at {path}")
            return dataclasses.replace(options, address=None)
        address, source = (
            recorded,
            f"the cluster record {path} that `ray start` wrote (plain ray.init() follows it)",
        )
    if address.startswith("ray://") or address.startswith("http"):
        return dataclasses.replace(options, address=address, address_source=source)
    from evalhub.execution.cluster import answers

    deadline = time.monotonic() + PROBE_S
    while not answers(address, timeout=2.0):
        if time.monotonic() > deadline:
            hint = (
                "; it is stale (a killed `ray start` leaves it): delete it, or set RAY_ADDRESS"
                if source and "record" in source
                else ""
            )
            raise EvalhubError(
                f"no Ray cluster answers at {address} (from {source or 'the address given'}){hint}"
            )
        time.sleep(0.5)
    return dataclasses.replace(options, address=address, address_source=source)


_CONNECTION: RayConnection | None = None
_CONNECTION_LOCK = threading.Lock()


def ray_connection() -> RayConnection:
    """The process's one :class:`RayConnection` (made on first use)."""
    global _CONNECTION
    with _CONNECTION_LOCK:
        if _CONNECTION is None:
            _CONNECTION = RayConnection()
            atexit.register(_at_exit)
        return _CONNECTION


def _at_exit() -> None:
    if _CONNECTION is not None and _CONNECTION.started_here:
        try:
            _CONNECTION.shutdown()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return (text[:limit] + "…") if len(text) > limit else text or type(exc).__name__


@contextlib.contextmanager
def _priority(nice: int | None) -> Iterator[None]:
    """Start Ray's node processes at another CPU priority (they inherit it), then restore the driver's.

    Ray's raylet gives its agents a fixed 15 s to come up; on a machine busy with other work they may
    not, and Ray aborts. A negative ``nice`` (root or CAP_SYS_NICE only) gets them through; worker
    processes go back to the driver's own priority as they start (``EVALHUB_WORKER_NICE``).
    """
    if nice is None:
        yield
        return
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        log.info("evalhub: no permission to start Ray at nice %s; starting at %s", nice, before)
        yield
        return
    os.environ["EVALHUB_WORKER_NICE"] = str(before)
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


__all__ = ["RayConnection", "RayOptions", "ray_connection", "recorded_address", "resolve_address"]
