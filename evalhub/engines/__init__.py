"""Evaluation engines: how a loaded adapter is scored on a task. The main one is lm-evaluation-harness."""

from __future__ import annotations
