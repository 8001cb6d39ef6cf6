"""The local Ray cluster evalhub starts when none is given: started on first use, shared by every
process of this user, outliving the process that started it (as the embedded tracking server does).

Under ``EVALHUB_HOME``: ``ray.json`` (``address``, ``temp_dir``, ``gcs_pid``, ``num_cpus``,
``started_at``), ``ray.log`` (what ``ray start`` said) and ``ray.lock`` (``fcntl``: two processes
starting at once share one cluster). The cluster is ``ray start --head`` on 127.0.0.1 (a port below
10000; through :mod:`evalhub.execution._raynode`, so Ray keeps the loopback address), in a session of
its own, with its temp folder at ``EVALHUB_HOME/ray`` or, when that path is too long for Ray's Unix
sockets (107 bytes), ``/tmp/evalhub-ray-<hash of the home>``. A record whose cluster is gone (its GCS
dead or not answering) is replaced.

It ends with ``evalhub ray stop`` (:func:`stop`), or by itself: a small detached actor on it
(:class:`Keeper`) stops it once no experiment scheduler and no other driver has used it for
``EVALHUB_RAY_CLUSTER_IDLE_S`` seconds (default 900). Stopping kills the cluster's own processes only
(those that name its temp folder, and their children): never ``ray stop``, which would stop every Ray
of the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalhub._embedded import file_lock
from evalhub.errors import EvalhubError

START_TIMEOUT = 180.0
LOCK_TIMEOUT = 300.0
KEEPER = "evalhub-keeper"
NAMESPACE = "evalhub"
_SOCKET_ROOM = 40  # Ray adds ~62 bytes under its temp folder (session_<date>_<pid>/sockets/plasma_store)


def home(path: str | os.PathLike[str] | None = None) -> Path:
    from evalhub._embedded import home as embedded_home

    return embedded_home(path)


def idle_s() -> float:
    """How long the embedded cluster stays up unused (``EVALHUB_RAY_CLUSTER_IDLE_S``, default 900)."""
    return float(os.environ.get("EVALHUB_RAY_CLUSTER_IDLE_S", "900"))


def temp_dir_for(folder: Path) -> Path:
    """The Ray temp folder of the cluster of ``folder`` (short enough for Ray's socket paths)."""
    inside = folder / "ray"
    if len(str(inside)) <= _SOCKET_ROOM:
        return inside
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:10]
    return Path("/tmp") / f"evalhub-ray-{digest}"


def read_record(folder: Path) -> dict[str, Any] | None:
    """The recorded cluster of ``folder`` (``ray.json``), or None."""
    try:
        info = json.loads((folder / "ray.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("address") else None


def _locked(folder: Path, timeout: float = LOCK_TIMEOUT) -> contextlib.AbstractContextManager[None]:
    return file_lock(folder / "ray.lock", timeout, starting="evalhub is starting Ray", poll=0.1)


def answers(address: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def running(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The embedded cluster of the home folder if it is up (its GCS alive and answering), else None."""
    folder = home(path)
    info = read_record(folder)
    if info and _alive(info.get("gcs_pid")) and answers(str(info["address"])):
        return info
    return None


def ensure(path: str | os.PathLike[str] | None = None, num_cpus: int | None = None) -> dict[str, Any]:
    """The embedded cluster of the home folder: the running one, or a new one. ``{"address", ...}``."""
    folder = home(path)
    info = running(folder)
    if info:
        return info
    with _locked(folder):
        info = running(folder)
        if info:
            return info
        stale = read_record(folder)
        if stale:  # a cluster that died (a killed `ray start`): clear what is left of it
            kill_processes(str(stale.get("temp_dir") or ""))
            (folder / "ray.json").unlink(missing_ok=True)
        return _start(folder, num_cpus)


def _free_ports(count: int, low: int = 6100, high: int = 9990) -> list[int]:
    """``count`` distinct ports below 10000 that nothing listens on now."""
    found: list[int] = []
    candidates = list(range(low, high))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise EvalhubError(f"no {count} free ports between {low} and {high} on 127.0.0.1")


def node_command(temp_dir: Path, *, head: bool, address: str | None = None, num_cpus: int | None = None,
                 object_store_mb: int = 256, extra: list[str] | None = None) -> list[str]:  # fmt: skip
    """The ``ray start`` command line of a loopback node (head, or joining ``address``), every port
    chosen below 10000 so that several clusters live side by side on one machine."""
    ports = _free_ports(8)
    cmd = [sys.executable, "-m", "evalhub.execution._raynode", "start", "--node-ip-address", "127.0.0.1",
           "--temp-dir", str(temp_dir), "--disable-usage-stats",
           "--object-store-memory", str(object_store_mb << 20),
           "--node-manager-port", str(ports[1]), "--object-manager-port", str(ports[2]),
           "--dashboard-agent-grpc-port", str(ports[3]), "--dashboard-agent-listen-port", str(ports[4]),
           "--metrics-export-port", str(ports[5]), "--runtime-env-agent-port", str(ports[6])]  # fmt: skip
    if head:
        cmd += ["--head", "--port", str(ports[0]), "--ray-client-server-port", str(ports[7]),
                "--include-dashboard", "false"]  # fmt: skip
    else:
        assert address is not None
        cmd += ["--address", address]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    return cmd + list(extra or [])


def node_env() -> dict[str, str]:
    """The environment a node starts in: no auth on loopback, agents given time on a busy machine."""
    env = {**os.environ}
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.setdefault("RAY_agent_register_timeout_ms", "180000")
    env.pop("RAY_ADDRESS", None)
    return env


def _start(folder: Path, num_cpus: int | None, attempts: int = 3) -> dict[str, Any]:
    """``ray start --head``; on a machine busy with other work Ray's agents may miss the raylet's fixed
    start-up wait (the node "timed out during startup"): start over, up to ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_once(folder, num_cpus)
        except EvalhubError:
            if attempt == attempts:
                raise
            time.sleep(2.0)
    raise AssertionError("unreachable")


def _start_once(folder: Path, num_cpus: int | None) -> dict[str, Any]:
    temp_dir = temp_dir_for(folder)
    temp_dir.mkdir(parents=True, exist_ok=True)
    (temp_dir / "ray_current_cluster").unlink(missing_ok=True)
    if num_cpus is None and os.environ.get("EVALHUB_RAY_NUM_CPUS"):
        num_cpus = int(os.environ["EVALHUB_RAY_NUM_CPUS"])
    cmd = node_command(temp_dir, head=True, num_cpus=num_cpus)
    nice = os.environ.get("EVALHUB_RAY_START_NICE")
    if nice:
        cmd = ["nice", "-n", str(int(nice)), *cmd]
    logfile = folder / "ray.log"
    with open(logfile, "ab") as log:
        log.write(f"\n--- evalhub: ray start {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the process that started it
            close_fds=True,
            cwd=str(folder),
            env=node_env(),
        )
    try:
        code = proc.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        kill_processes(str(temp_dir))
        raise EvalhubError(
            f"the local Ray did not start within {START_TIMEOUT:.0f}s; see {logfile}"
        ) from None
    address_file = temp_dir / "ray_current_cluster"
    if code != 0 or not address_file.exists():
        kill_processes(str(temp_dir))
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-12:])
        raise EvalhubError(f"`ray start` for the local Ray failed (exit {code}); see {logfile}:\n{tail}")
    address = address_file.read_text().strip()
    record = {
        "address": address,
        "temp_dir": str(temp_dir),
        "gcs_pid": _gcs_pid(temp_dir),
        "num_cpus": num_cpus,
        "started_at": time.time(),
        "home": str(folder),
    }
    tmp = folder / "ray.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(folder / "ray.json")
    return record


def _gcs_pid(temp_dir: Path) -> int | None:
    for pid, cmdline in _processes():
        if "gcs_server" in cmdline and str(temp_dir) in cmdline:
            return pid
    return None


def _processes() -> Iterator[tuple[int, str]]:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        yield int(entry), raw.replace(b"\0", b" ").decode(errors="replace")


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def cluster_processes(marker: str) -> list[int]:
    """The processes of the cluster whose temp folder is ``marker``: those naming it on their command
    line (GCS, raylet, agents) and every process under them (Ray's workers rename themselves)."""
    if not marker or len(marker) < 8:
        return []
    me = os.getpid()
    roots = [pid for pid, cmd in _processes() if marker in cmd and pid != me]
    tree = _children()
    found: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in found or pid == me:
            continue
        found.append(pid)
        stack.extend(tree.get(pid, []))
    return found


def _ancestors(pid: int) -> list[int]:
    """``pid``'s parent, its parent, … (nearest first)."""
    out: list[int] = []
    while pid > 1 and len(out) < 64:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.append(pid)
    return out


def kill_processes(marker: str, grace: float = 5.0, last: list[int] | None = None) -> int:
    """Stop the cluster whose temp folder is ``marker``: SIGTERM, then SIGKILL what is left after
    ``grace`` seconds; the processes of ``last`` that are the cluster's get SIGKILL once every other
    one is gone (the caller's own ancestors). Those are stopped (SIGSTOP) first, so that a raylet
    cannot start new workers while its others go; a last sweep takes any that came up anyway.
    Returns how many processes there were."""
    pids = cluster_processes(marker)
    spared = [p for p in (last or []) if p in pids]
    pids = [p for p in pids if p not in spared]
    for pid in spared:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGSTOP)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in [p for p in cluster_processes(marker) if p not in spared] + [p for p in pids if _alive(p)]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in reversed(spared):  # the farthest ancestor first, the nearest (a raylet) last
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0  # the caller may be going with its raylet: sweep while it can
    while time.monotonic() < deadline:
        left = cluster_processes(marker)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    return len(pids) + len(spared)


def stop(path: str | os.PathLike[str] | None = None) -> bool:
    """Stop the embedded cluster of the home folder (True if one was running)."""
    folder = home(path)
    with _locked(folder):
        info = read_record(folder)
        if not info:
            return False
        was = _alive(info.get("gcs_pid"))
        kill_processes(str(info.get("temp_dir") or ""))
        (folder / "ray.json").unlink(missing_ok=True)
        return was


# -- the idle timeout, kept on the cluster itself ---------------------------------------------------


class Keeper:
    """A detached actor on the embedded cluster's head: stops the cluster once nothing used it for
    ``idle`` seconds (no evalhub scheduler alive, no driver connected but itself)."""

    def __init__(self, folder: str, temp_dir: str, idle: float, every: float = 10.0) -> None:
        self.folder, self.temp_dir, self.idle, self.every = Path(folder), temp_dir, idle, every
        self.quiet_since: float | None = None
        threading.Thread(target=self._watch, name="evalhub-keeper", daemon=True).start()

    def busy(self) -> bool:
        import ray

        names = ray.util.list_named_actors(all_namespaces=True)
        if any(str(a.get("name", "")).startswith("evalhub-scheduler-") for a in names):
            return True
        # a job is alive while its driver is connected (a detached actor outlives its job)
        gcs = ray._private.worker.global_worker.gcs_client
        return any(not job.is_dead for job in gcs.get_all_job_info().values())

    def _watch(self) -> None:
        while True:
            time.sleep(self.every)
            try:
                busy = self.busy()
            except Exception:  # the GCS is busy or going away: look again later
                continue
            now = time.monotonic()
            if busy:
                self.quiet_since = None
                continue
            if self.quiet_since is None:
                self.quiet_since = now
            elif now - self.quiet_since >= self.idle:
                self._stop()

    def _stop(self) -> None:
        try:
            with _locked(self.folder, timeout=30):
                if self.busy():  # someone came in while the lock was taken
                    self.quiet_since = None
                    return
                record = read_record(self.folder)
                if record and record.get("temp_dir") == self.temp_dir:
                    (self.folder / "ray.json").unlink(missing_ok=True)
                # this actor's process and its raylet are the cluster's own: killed last, or the raylet's
                # death would end this process (and any child of it) before the GCS is killed
                kill_processes(self.temp_dir, grace=2.0, last=_ancestors(os.getpid()))
        except Exception:  # pragma: no cover - the next round tries again
            return

    def ping(self) -> float:
        return self.idle


def start_keeper(record: dict[str, Any]) -> None:
    """Make sure the keeper of the embedded cluster runs (on its head node); call while connected."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    head = next((n for n in ray.nodes() if n.get("Alive") and "node:__internal_head__" in n.get("Resources", {})),
                None)  # fmt: skip
    options: dict[str, Any] = {"name": KEEPER, "namespace": NAMESPACE, "lifetime": "detached",
                               "get_if_exists": True, "num_cpus": 0, "max_restarts": -1}  # fmt: skip
    if head is not None:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(head["NodeID"], soft=False)
    actor = (
        ray.remote(Keeper)
        .options(**options)
        .remote(str(record.get("home") or home()), str(record["temp_dir"]), idle_s())
    )
    ray.get(actor.ping.remote(), timeout=120)


__all__ = [
    "Keeper",
    "answers",
    "cluster_processes",
    "ensure",
    "idle_s",
    "kill_processes",
    "node_command",
    "node_env",
    "read_record",
    "running",
    "start_keeper",
    "stop",
    "temp_dir_for",
]
