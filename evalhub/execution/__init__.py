"""Execution of runs: the Ray executor (driver loop, retries, cancel) and its worker actors."""

from __future__ import annotations

from evalhub.execution.executor import Job, RayExecutor

__all__ = ["Job", "RayExecutor"]
