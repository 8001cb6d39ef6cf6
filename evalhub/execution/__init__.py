"""Execution of runs on Ray: the in-process executor (driver loop, retries, cancel), the scheduler that
lives on the cluster (opt-in), and their worker actors."""

from __future__ import annotations

from evalhub.execution.executor import ClusterExecutor, Job, RayExecutor

__all__ = ["ClusterExecutor", "Job", "RayExecutor"]
