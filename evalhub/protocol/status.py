"""A run's statuses: the one list every part of evalhub (server, client, widgets, CLI) reads.

``queued → running → completed | failed | cancelled``; the server's state machine
(``evalhub_server.lifecycle``) decides which changes are legal.
"""

from __future__ import annotations

from typing import Literal

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
RunType = Literal["training", "inference", "offline_eval", "trace"]  # trace: spans an application sent

STATUSES: tuple[RunStatus, ...] = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE: tuple[RunStatus, ...] = ("queued", "running")
TERMINAL: tuple[RunStatus, ...] = ("completed", "failed", "cancelled")
RUN_TYPES: tuple[RunType, ...] = ("training", "inference", "offline_eval", "trace")


def is_terminal(status: str | None) -> bool:
    """True for ``completed``, ``failed`` and ``cancelled``."""
    return status in TERMINAL


__all__ = ["ACTIVE", "RUN_TYPES", "STATUSES", "TERMINAL", "RunStatus", "RunType", "is_terminal"]
