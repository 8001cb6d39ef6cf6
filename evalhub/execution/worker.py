"""The worker: one loaded checkpoint, evaluated on every task of that checkpoint, reporting to the server.

The class is plain Python; :mod:`evalhub.execution.driver` makes it a Ray actor. Everything it learns
goes to the tracking server through one :class:`~evalhub._events.EventStream` per run attempt
(stream ``attempt-<n>``), so a retried attempt never collides with the events of the one that died.

On a node that does not share the submitting machine's disk, the task files and plugin code it needs
come with its ``runtime_env`` (:mod:`evalhub.execution.bundle`) and weights behind a URI are fetched
into the node's cache. It reaches the server directly, or through the relay
(:mod:`evalhub.execution.relay`). Before it evaluates a run it says what the run computes (its
``work_key``: the checkpoint's content, runtime and params, the task's content, the config); a
completed run of the project that computed the same is reused instead (``POST /runs/{id}/reuse``).
Otherwise every request's answer is looked up in, and stored to, the server's request cache, so a run
evaluated again after a crash asks the model only for what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalhub.adapters.base import CheckpointRef
from evalhub.engines._cache import RequestCache
from evalhub.engines.lm_eval import EvalCancelled

SAMPLE_CHUNK = 500  # samples per event: keeps request bodies far below the server's size limit
PROGRESS_EVERY_S = 0.25  # at most this often a progress event (each one also brings a cancel back)
SYS_EVERY_S = 5.0  # resource snapshots while a run is evaluated


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Worker:
    """Hosts one checkpoint's adapter; :meth:`evaluate` runs one task of it as one run attempt."""

    def __init__(
        self,
        url: str,
        token: str | None,
        project: str,
        checkpoint: dict[str, Any],
        env: dict[str, str] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        os.environ.update(env or {})
        nice = os.environ.get("EVALHUB_WORKER_NICE")
        if nice is not None:  # Ray's node processes may run at a raised priority; workers do not
            try:
                os.setpriority(os.PRIO_PROCESS, 0, max(int(nice), os.getpriority(os.PRIO_PROCESS, 0)))
            except (OSError, ValueError):
                pass
        from evalhub.client import Client
        from evalhub.execution.bundle import Bundle

        self.context = context or {}
        self.bundle = Bundle.from_dict(self.context.get("bundle"))
        transport, self.relayed = _route(self.context.get("relay") or {})
        self.client = Client.unattended(url, token=token, project=project, transport=transport)
        self.ref = CheckpointRef(**checkpoint)
        self.adapter: Any = None
        self.load_s = 0.0
        self.identity = ""  # what answers requests: weights content, runtime, adapter, params, code
        self.workdir = Path(tempfile.mkdtemp(prefix="evalhub-worker-"))

    def ready(self) -> dict[str, Any]:
        """Answers once the worker is placed on a node and constructed."""
        return self.info()

    def info(self) -> dict[str, Any]:
        """Where this worker runs: node (host), Ray node id, pid, GPU ids."""
        node_id = None
        gpu: Any = None
        try:
            import ray

            ctx = ray.get_runtime_context()
            node_id = ctx.get_node_id()
            gpus = ray.get_gpu_ids()
            gpu = ",".join(str(g) for g in gpus) if gpus else None
        except Exception:  # outside Ray (tests drive the class directly)
            pass
        return {"node": socket.gethostname(), "ray_node_id": node_id, "pid": os.getpid(), "gpu": gpu,
                "relayed": self.relayed}  # fmt: skip

    def load(self) -> dict[str, Any]:
        """Load the checkpoint; ``{"ok": False, "error": ...}`` instead of raising, so the message survives."""
        from evalhub.adapters import load_adapter
        from evalhub.errors import EvalhubError, WeightsNotFound
        from evalhub.execution.bundle import localize

        start = time.perf_counter()
        info = self.info()
        where = f"node {info['node']} (Ray node {str(info['ray_node_id'])[:12]})"
        try:
            self.client.health()
        except EvalhubError as exc:
            how = "through the relay" if self.relayed else "directly"
            return {"ok": False, "error": (
                f"the worker on {where} cannot reach the tracking server at {self.client.url} {how}: {exc}; "
                "every node must reach it: run a shared server (evalhub server --host <address>) or "
                "leave EVALHUB_RELAY at auto")}  # fmt: skip
        try:
            self.ref = dataclasses.replace(self.ref, code_uri=localize(self.ref.code_uri, self.bundle))
            self.identity = _identity(self.ref)
            self.adapter = load_adapter(self.ref)
        except WeightsNotFound as exc:
            return {"ok": False, "error": (
                f"loading {self.ref.model}/{self.ref.name} on {where} failed: {_error_text(exc)}; a weights "
                "path must exist on every node: register the checkpoint with a URI each node can fetch "
                "(http(s)://, hf://, s3://) or keep it on storage every node sees")}  # fmt: skip
        except Exception as exc:
            return {
                "ok": False,
                "error": f"loading {self.ref.model}/{self.ref.name} failed: {_error_text(exc)}",
            }
        self.load_s = time.perf_counter() - start
        return {"ok": True, "load_s": self.load_s, **info}

    def evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one task as attempt ``job["attempt"]`` of run ``job["run_id"]``; report everything as events.

        The run's status is the server's: this reports ``running``, then ``completed`` only once every
        event of the attempt is acknowledged (else ``failed`` with what was lost), or ``failed`` with
        the error. Returns ``{"run_id", "status", "delivered"}``: ``delivered`` says the server heard
        the attempt's end (if not, the driver reports the attempt lost and the server decides).
        """
        from evalhub._events import EventStream
        from evalhub.execution.bundle import localize

        run_id = int(job["run_id"])
        attempt = int(job.get("attempt") or 1)
        stream = EventStream(
            self.client, run_id, stream=f"attempt-{attempt}", flush_interval=0.25, attempt=attempt
        )
        info = self.info()
        sampler = None
        plugins = None
        try:
            config = localize(job.get("config") or {}, self.bundle)
            task = localize(job["task"], self.bundle)
            work_key = self.work_key(task, config)
            stream.status("running", worker=info, work_key=work_key)
            stream.log(
                f"attempt {attempt}: {self.ref.model}/{self.ref.name} ({self.ref.runtime}) on task "
                f"{task.get('name')} at {info['node']} pid {info['pid']} (checkpoint loaded in {self.load_s:.1f}s)"
                + (", reporting through the relay" if self.relayed else "")
            )
            stream.flush(timeout=60)
            if stream.stale or stream.run_status not in (None, "running"):
                return self._ended(run_id, stream, stream.run_status or "superseded", delivered=True)
            if config.get("reuse", True) and self._reused(run_id, attempt, work_key):
                return self._ended(run_id, stream, "completed", delivered=True)
            sampler = self._start_sampler(stream)
            plugins = _plugins(stream, config.get("metric_plugins"))
            result = self._evaluate(stream, task, config, run_id)
            stream.metrics(result.all_metrics, higher_is_better=getattr(result, "higher_is_better", None))
            self._store_images(run_id, result.samples)
            for start in range(0, len(result.samples), SAMPLE_CHUNK):
                chunk = result.samples[start : start + SAMPLE_CHUNK]
                stream.samples(chunk)
                if plugins is not None:
                    plugins.samples(chunk)
            self._put_results(run_id, result)
            if plugins is not None:
                plugins.close()  # their summary metrics, before the attempt's end
            stream.log(
                f"done: {len(result.samples)} samples, "
                + ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
            )
            delivery = stream.flush(timeout=300)
            if delivery.stale:
                return self._ended(run_id, stream, "superseded", delivered=True)
            if delivery.dropped:
                error = (
                    f"{delivery.dropped} of the attempt's events were refused by the server and lost "
                    f"(first: {delivery.reasons[0] if delivery.reasons else 'unknown'})"
                )
                stream.status("failed", error=error)
                return self._ended(run_id, stream, "failed", error=error)
            stream.status("completed")
            return self._ended(run_id, stream, "completed", metrics=result.metrics)
        except EvalCancelled:
            if stream.stale:
                return self._ended(run_id, stream, "superseded", delivered=True)
            stream.log("stopped: the run was cancelled")
            return self._ended(run_id, stream, "cancelled", delivered=True)
        except Exception as exc:
            error = _error_text(exc)
            stream.log(traceback.format_exc(), level="error")
            stream.status("failed", error=error)
            return self._ended(run_id, stream, "failed", error=error)
        finally:
            if plugins is not None:
                plugins.close(finish=False)  # a failed or cancelled attempt: only stop their thread
            if sampler is not None:
                sampler.stop()
            stream.close(timeout=30)

    @staticmethod
    def _ended(
        run_id: int,
        stream: Any,
        status: str,
        *,
        error: str | None = None,
        delivered: bool | None = None,
        metrics: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """The answer to the driver once the attempt's last events are sent (or known lost)."""
        if delivered is None:
            try:
                delivery = stream.flush(timeout=120)
                delivered = not delivery.pending and not delivery.stale
            except Exception:  # the server did not acknowledge in time
                delivered = False
        answer: dict[str, Any] = {"run_id": run_id, "status": status, "delivered": delivered}
        if error is not None:
            answer["error"] = error
        if metrics is not None:
            answer["metrics"] = metrics
        return answer

    def work_key(self, task: dict[str, Any], config: dict[str, Any]) -> str:
        """What a run computes: this worker's identity (weights content, runtime, adapter, params, code),
        the task's content (data files by their digest) and the run's config (what changes results)."""
        from evalhub.execution.bundle import digest_of

        kept = {k: v for k, v in config.items() if k not in _NOT_RESULTS}
        what = {"engine": task.get("engine"), "engine_config": task.get("engine_config"),
                "metrics": task.get("metrics")}  # fmt: skip
        body = json.dumps({"checkpoint": self.identity, "task": digest_of(what), "config": digest_of(kept)},
                          sort_keys=True)  # fmt: skip
        return hashlib.sha256(body.encode()).hexdigest()

    def _reused(self, run_id: int, attempt: int, work_key: str) -> bool:
        """Ask the server to give this run the results of a completed run that computed the same."""
        from evalhub.errors import EvalhubError

        try:
            answer = self.client.post(f"/runs/{run_id}/reuse", {"attempt": attempt, "work_key": work_key})
        except EvalhubError:  # a server without reuse, or the attempt moved on: evaluate
            return False
        return bool(answer.get("reused"))

    def _evaluate(self, stream: Any, task: dict[str, Any], config: dict[str, Any], run_id: int = 0) -> Any:
        from evalhub.engines import engine_of

        engine = engine_of(task)
        extra: dict[str, Any] = {}
        if engine.__name__ == "evalhub.engines.lm_eval" and config.get("request_cache", True):
            extra["cache"] = ServerCache(self.client, stream, self.identity)
        last = [0.0]

        def on_progress(done: int, total: int) -> None:
            if stream.run_status == "cancelled" or stream.stale:
                raise EvalCancelled("cancelled" if not stream.stale else f"superseded: {stream.stale}")
            now = time.monotonic()
            if done in (0, total) or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                stream.progress(done, total)

        result = engine.evaluate(
            self.adapter,
            task,
            **engine.options_from_config(config),
            on_progress=on_progress,
            workdir=self.workdir,
            **extra,
        )
        cache = extra.get("cache")
        if cache is not None and cache.counts.hits:
            total = cache.counts.hits + cache.counts.misses
            stream.log(
                f"request cache: {cache.counts.hits} of {total} requests answered from earlier attempts"
            )
        return result

    def _start_sampler(self, stream: Any) -> Any:
        try:
            from evalhub.sysmetrics import Sampler, snapshot
        except ImportError:
            return None

        def emit(index: int, values: dict[str, float]) -> None:
            stream.series_many([(k, index, v, None) for k, v in values.items()])

        emit(0, snapshot())
        sampler = Sampler(lambda i, v: emit(i + 1, v), interval=SYS_EVERY_S)
        return sampler.start()

    def _store_images(self, run_id: int, samples: list[dict[str, Any]]) -> None:
        """A generated image (``extra.image_path``, local to this worker) becomes an artifact of the run
        with a thumbnail; the sample keeps their names (``output`` is the image's), not the path."""
        from urllib.parse import quote

        for sample in samples:
            extra = sample.get("extra") or {}
            path = extra.pop("image_path", None)
            if not path:
                continue
            stem = "img-" + hashlib.sha256(str(sample["sample_key"]).encode()).hexdigest()[:24]
            image, thumb = f"{stem}.png", f"{stem}.thumb.png"
            self.client.put_file(f"/runs/{run_id}/artifacts/{quote(image)}", path)
            self.client.put_file(f"/runs/{run_id}/artifacts/{quote(thumb)}", _thumbnail(Path(path)))
            extra.update(image=image, thumbnail=thumb)
            sample["extra"] = extra
            sample["output"] = image

    def _put_results(self, run_id: int, result: Any) -> None:
        """lm-eval's results (without samples) and evalhub's provenance, as the run's results.json."""
        body = {"provenance": result.provenance, "perf": result.perf, "lm_eval": result.results}
        data = json.dumps(body, default=str, indent=1).encode()
        self.client.put_bytes(f"/runs/{run_id}/artifacts/results.json", data, content_type="application/json")

    def close(self) -> None:
        """Free the model."""
        if self.adapter is not None:
            try:
                self.adapter.close()
            finally:
                self.adapter = None


_NOT_RESULTS = ("max_attempts", "runtime_env", "resources", "reuse", "request_cache")
"""Config keys that change how a run is executed, not what it computes."""


class ServerCache(RequestCache):
    """The request cache in the tracking server: looked up with ``POST /cache/lookup``, written through
    the attempt's event stream (events of type ``cache``, as the answers come)."""

    def __init__(self, client: Any, stream: Any, prefix: str) -> None:
        super().__init__(prefix)
        self.client = client
        self.stream = stream

    def lookup(self, keys: Sequence[str]) -> Mapping[str, str]:
        from evalhub.errors import EvalhubError

        found: dict[str, str] = {}
        for start in range(0, len(keys), 1000):
            try:
                answer = self.client.post("/cache/lookup", {"keys": list(keys[start : start + 1000])})
            except EvalhubError:  # no cache is no error: the model answers
                return found
            found.update(answer.get("values") or {})
        return found

    def store(self, entries: Mapping[str, str]) -> None:
        self.stream.cache(entries)


def _plugins(stream: Any, entries: Any) -> Any:
    """The run's metric plugins (``config.metric_plugins``) fed from a thread of their own, or None; one
    that cannot be built here is logged on the run and left out (the run goes on without it)."""
    if not entries:
        return None
    from evalhub.metric_plugins import PluginRunner, resolve

    built = []
    for entry in entries:
        try:
            built.append(resolve(entry))
        except Exception as exc:
            stream.log(f"metric plugin {entry!r} left out: {exc}", level="warning")
    return PluginRunner(stream, built) if built else None


def _identity(ref: CheckpointRef) -> str:
    """What answers a run's requests: the weights' content (their URI where they cannot be read here,
    an API model; for a python plugin, which is handed its URI, the URI too), the runtime, adapter and
    params, and the plugin code's content."""
    from evalhub._content import digest
    from evalhub.adapters.uris import resolve

    try:
        weights = "content:" + digest(resolve(ref.uri)) if ref.uri else ""
    except Exception:  # not a path or URI this worker can read: the adapter decides
        weights = f"uri:{ref.uri}"
    code = ""
    if ref.code_uri and Path(ref.code_uri).is_dir():
        code = digest(ref.code_uri)
    body = {
        "weights": weights,
        # a python plugin is handed the URI itself and may act on it (a folder's name, a config it
        # reads later): two checkpoints with equal bytes behind two URIs are not the same model there
        "uri": ref.uri if ref.runtime == "python" else None,
        "runtime": ref.runtime,
        "adapter": ref.adapter,
        "params": ref.params,
        "code": code,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _route(relay: dict[str, Any]) -> tuple[Any, bool]:
    """The transport of this worker's client: through the relay (see :mod:`evalhub.execution.relay`)
    when it must, else direct (None)."""
    if not relay.get("name") or relay.get("mode") == "never":
        return None, False
    import ray

    here = ray.get_runtime_context().get_node_id()
    if relay.get("mode") == "always" or (relay.get("loopback") and here != relay.get("node_id")):
        from evalhub.execution.relay import RelayTransport

        return RelayTransport(ray.get_actor(relay["name"], namespace=relay.get("namespace"))), True
    return None, False


def _thumbnail(path: Path, size: int = 96) -> Path:
    """A PNG of at most ``size`` pixels a side beside ``path`` (the image itself when it is that small)."""
    from PIL import Image

    with Image.open(path) as image:
        if max(image.size) <= size:
            return path
        image.thumbnail((size, size))
        out = path.with_name(path.stem + ".thumb.png")
        image.save(out, format="PNG")
    return out


__all__ = ["Worker"]
