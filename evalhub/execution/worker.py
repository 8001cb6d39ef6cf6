"""The worker: one loaded checkpoint, evaluated on every task of that checkpoint, reporting to the server.

The class is plain Python; :mod:`evalhub.execution.executor` makes it a Ray actor. Everything it learns
goes to the tracking server through one :class:`~evalhub._events.EventStream` per run attempt
(stream ``attempt-<n>``), so a retried attempt never collides with the events of the one that died.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from evalhub.adapters.base import CheckpointRef
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
    ) -> None:
        os.environ.update(env or {})
        nice = os.environ.get("EVALHUB_WORKER_NICE")
        if nice is not None:  # Ray's node processes may run at a raised priority; workers do not
            try:
                os.setpriority(os.PRIO_PROCESS, 0, max(int(nice), os.getpriority(os.PRIO_PROCESS, 0)))
            except (OSError, ValueError):
                pass
        from evalhub.client import Client

        self.client = Client(url, token=token, project=project)
        self.ref = CheckpointRef(**checkpoint)
        self.adapter: Any = None
        self.load_s = 0.0
        self.workdir = Path(tempfile.mkdtemp(prefix="evalhub-worker-"))

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
        return {"node": socket.gethostname(), "ray_node_id": node_id, "pid": os.getpid(), "gpu": gpu}

    def load(self) -> dict[str, Any]:
        """Load the checkpoint; ``{"ok": False, "error": ...}`` instead of raising, so the message survives."""
        from evalhub.adapters import load_adapter

        start = time.perf_counter()
        try:
            self.adapter = load_adapter(self.ref)
        except Exception as exc:
            return {
                "ok": False,
                "error": f"loading {self.ref.model}/{self.ref.name} failed: {_error_text(exc)}",
            }
        self.load_s = time.perf_counter() - start
        return {"ok": True, "load_s": self.load_s, **self.info()}

    def evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one task as attempt ``job["attempt"]`` of run ``job["run_id"]``; report everything as events.

        Returns ``{"run_id", "status": completed | failed | cancelled, "error"?}``.
        """
        from evalhub._events import EventStream

        run_id = int(job["run_id"])
        attempt = int(job.get("attempt") or 1)
        config = job.get("config") or {}
        task = job["task"]
        stream = EventStream(self.client, run_id, stream=f"attempt-{attempt}", flush_interval=0.25)
        info = self.info()
        sampler = None
        try:
            stream.status("running", worker=info)
            stream.log(
                f"attempt {attempt}: {self.ref.model}/{self.ref.name} ({self.ref.runtime}) on task "
                f"{task.get('name')} at {info['node']} pid {info['pid']} (checkpoint loaded in {self.load_s:.1f}s)"
            )
            stream.flush(timeout=60)
            if stream.run_status not in (None, "running"):
                return {"run_id": run_id, "status": stream.run_status or "cancelled", "skipped": True}
            sampler = self._start_sampler(stream)
            result = self._evaluate(stream, task, config)
            stream.metrics(result.all_metrics)
            for start in range(0, len(result.samples), SAMPLE_CHUNK):
                stream.samples(result.samples[start : start + SAMPLE_CHUNK])
            self._put_results(run_id, result)
            stream.log(
                f"done: {len(result.samples)} samples, "
                + ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
            )
            stream.status("completed")
            stream.flush(timeout=120)
            return {"run_id": run_id, "status": "completed", "metrics": result.metrics}
        except EvalCancelled:
            stream.log("stopped: the run was cancelled")
            stream.flush(timeout=30)
            return {"run_id": run_id, "status": "cancelled"}
        except Exception as exc:
            error = _error_text(exc)
            stream.log(traceback.format_exc(), level="error")
            stream.status("failed", error=error)
            stream.flush(timeout=60)
            return {"run_id": run_id, "status": "failed", "error": error}
        finally:
            if sampler is not None:
                sampler.stop()
            stream.close(timeout=30)

    def _evaluate(self, stream: Any, task: dict[str, Any], config: dict[str, Any]) -> Any:
        from evalhub.engines.lm_eval import evaluate

        last = [0.0]

        def on_progress(done: int, total: int) -> None:
            if stream.run_status == "cancelled":
                raise EvalCancelled("cancelled")
            now = time.monotonic()
            if done in (0, total) or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                stream.progress(done, total)

        return evaluate(
            self.adapter,
            task,
            limit=config.get("limit"),
            seed=int(config.get("seed", 1234)),
            batch_size=int(config.get("batch_size", 16)),
            generation=config.get("generation") or None,
            num_fewshot=config.get("num_fewshot"),
            apply_chat_template=bool(config.get("apply_chat_template", False)),
            fewshot_as_multiturn=bool(config.get("fewshot_as_multiturn", False)),
            on_progress=on_progress,
            workdir=self.workdir,
        )

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


__all__ = ["Worker"]
