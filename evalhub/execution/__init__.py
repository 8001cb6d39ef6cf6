"""Execution of runs on Ray: the scheduler that lives on the cluster (the default), the in-process
executor (driver loop, retries, cancel), and their worker actors."""

from __future__ import annotations

from evalhub.execution.executor import ClusterExecutor, Job, RayExecutor, default_executor

__all__ = ["ClusterExecutor", "Job", "RayExecutor", "default_executor"]
