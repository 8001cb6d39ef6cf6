"""A run's life: the one state machine of evalhub. Every status change of every run goes through here.

    queued --running--> running --completed | failed | cancelled--> (terminal)
      |                   |
      +--cancelled/failed +--(its attempt lost: lease lapsed or the driver saw the worker die)--> queued
                                                                   (attempt + 1) or failed (no attempts left)

A run that is ``running`` is held by one attempt (``attempt``), under a lease that the attempt's
writer renews with every event batch it posts (an empty batch is a heartbeat). When the lease lapses
the reaper calls :func:`lapse`: an evaluation run of an experiment with attempts left goes back to
``queued`` as the next attempt (a scheduler picks it up); any other run (a training run, a run outside
an experiment, or one whose attempts are spent) ends ``failed`` with the reason. Nobody asks for
``running -> queued`` directly: it is this module's decision when an attempt is lost.

A ``trace`` run (the spans an application sends, :mod:`.traces`) is running while the application
sends them; no worker holds it, so it holds no lease and the reaper leaves it be until someone
completes or cancels it.
"""

from __future__ import annotations

from typing import Any

from evalhub.protocol import ACTIVE, TERMINAL

LEASELESS = ("trace",)  # run types no worker holds: running without a lease

LEGAL: dict[str, tuple[str, ...]] = {
    "queued": ("running", "cancelled", "failed"),
    "running": ("completed", "failed", "cancelled"),
}


def illegal(current: str, new: str) -> str:
    where = "a terminal state" if current in TERMINAL else f"'{current}'"
    allowed = ", ".join(LEGAL.get(current, ())) or "none"
    return f"illegal status change: '{current}' -> '{new}' (from {where}; allowed: {allowed})"


def stale_attempt(run: dict[str, Any], attempt: int) -> str | None:
    """Why events of ``attempt`` are refused, or None when it is the run's current attempt."""
    if attempt == int(run["attempt"]):
        return None
    return (
        f"run {run['id']}: attempt {attempt} is not the run's current attempt; the run is on attempt "
        f"{run['attempt']} ({run['status']}), so events of attempt {attempt} are refused"
    )


def transition(
    run: dict[str, Any],
    new: str,
    *,
    now: float,
    lease_s: float,
    error: str | None = None,
    worker: Any = None,
) -> str | None:
    """Apply a requested status change to a run's column values in place; the problem, if illegal."""
    cur = run["status"]
    if new not in LEGAL.get(cur, ()):
        return illegal(cur, new)
    run["status"] = new
    if new == "running":
        run["started_at"] = now
        run["ended_at"] = None
        run["lease_expires_at"] = None if run.get("type") in LEASELESS else now + lease_s
    else:
        run["ended_at"] = now
        run["lease_expires_at"] = None
    if error is not None:
        run["error"] = error
    if worker is not None:
        run["worker"] = worker
    return None


def renew(run: dict[str, Any], *, now: float, lease_s: float) -> None:
    """A sign of life from the run's current attempt: push its lease out (only a running run holds one).

    The row is written at most every quarter lease, so a busy writer does not update it per batch.
    """
    if run["status"] == "running" and run.get("type") not in LEASELESS:
        expires = run.get("lease_expires_at")
        if expires is None or expires - now < lease_s * 0.75:
            run["lease_expires_at"] = now + lease_s


def requeues(run: dict[str, Any]) -> bool:
    """Whether a lost attempt of this run is retried (else the run fails)."""
    return (
        run["type"] != "training"
        and run.get("experiment_id") is not None
        and int(run["attempt"]) < int(run.get("max_attempts") or 1)
    )


def lapse(run: dict[str, Any], reason: str, *, now: float) -> str | None:
    """The run's current attempt is lost (``reason``): re-queue it or fail it, in place.

    Returns the line to log on the run, or None when the run is not running (nothing to do).
    """
    if run["status"] != "running":
        return None
    attempt = int(run["attempt"])
    run["lease_expires_at"] = None
    if requeues(run):
        run["status"] = "queued"
        run["attempt"] = attempt + 1
        run["started_at"] = None
        run["ended_at"] = None
        return f"attempt {attempt} lost ({reason}); re-queued as attempt {attempt + 1}"
    run["status"] = "failed"
    run["ended_at"] = now
    if run["type"] == "training" or run.get("experiment_id") is None:
        run["error"] = f"lost: {reason}"
    else:
        run["error"] = f"lost: {reason}; {attempt} of {run.get('max_attempts')} attempts spent"
    return f"attempt {attempt} lost ({reason}); the run failed"


CANCELLABLE = ACTIVE
RESUMABLE = ("failed", "cancelled")


def resume(run: dict[str, Any], attempts: int) -> bool:
    """Put a failed or cancelled evaluation run of an experiment back in the queue, in place, as its
    next attempt with ``attempts`` more attempts allowed; False when the run is not one to resume
    (completed, active, or not an experiment's evaluation run)."""
    if run["status"] not in RESUMABLE or run["type"] == "training" or run.get("experiment_id") is None:
        return False
    attempt = int(run["attempt"]) + 1
    run.update(
        status="queued",
        attempt=attempt,
        max_attempts=attempt + max(1, attempts) - 1,
        error=None,
        started_at=None,
        ended_at=None,
        lease_expires_at=None,
        progress_done=0,
    )
    return True


def cancelled(now: float) -> dict[str, Any]:
    """The column values of a cancelled run (an experiment's cancel writes them to all its active runs)."""
    return {"status": "cancelled", "ended_at": now, "lease_expires_at": None}


def cancel(run: dict[str, Any], *, now: float) -> str | None:
    """Cancel a queued or running run in place (a cancelled run stays cancelled); the problem, if any."""
    if run["status"] == "cancelled":
        return None
    if run["status"] not in CANCELLABLE:
        return illegal(run["status"], "cancelled")
    run.update(cancelled(now))
    return None


__all__ = [
    "CANCELLABLE",
    "LEASELESS",
    "LEGAL",
    "RESUMABLE",
    "cancel",
    "cancelled",
    "illegal",
    "lapse",
    "renew",
    "requeues",
    "resume",
    "stale_attempt",
    "transition",
]
