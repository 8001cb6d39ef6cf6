"""Where a widget reads from: the tracking server behind a Hub, an Experiment, a Run or an id."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from evalhub.errors import EvalhubError


class ClientLike(Protocol):
    """The part of ``evalhub.client.Client`` the widgets use."""

    def get(self, path: str, **params: Any) -> Any: ...

    def post(self, path: str, json: Any) -> Any: ...

    def paged(self, path: str, limit: int = 1000, **params: Any) -> Iterator[dict[str, Any]]: ...

    def request(self, method: str, path: str, **kw: Any) -> Any: ...


def client_of(obj: Any = None, hub: Any = None) -> ClientLike:
    """The HTTP client behind ``hub`` (a Hub or a Client), else behind ``obj``, else ``connect()``."""
    for candidate in (hub, obj):
        if candidate is None:
            continue
        found = _client_attr(candidate)
        if found is not None:
            return found
    from evalhub.hub import connect

    return connect().client


def _client_attr(obj: Any) -> ClientLike | None:
    if hasattr(obj, "get") and hasattr(obj, "post") and not isinstance(obj, dict):
        return obj  # type: ignore[no-any-return]
    for name in ("client", "_client"):
        value = getattr(obj, name, None)
        if value is not None and hasattr(value, "get"):
            return value  # type: ignore[no-any-return]
    for name in ("hub", "_hub"):
        value = getattr(obj, name, None)
        if value is not None and getattr(value, "client", None) is not None:
            return value.client  # type: ignore[no-any-return]
    return None


def id_of(obj: Any, what: str) -> int:
    """The integer id of an object (an id, a dict with ``id``, or anything with ``.id``)."""
    if isinstance(obj, bool):
        raise EvalhubError(f"expected {what} or its id, got {obj!r}")
    if isinstance(obj, int):
        return obj
    if isinstance(obj, str) and obj.strip().isdigit():
        return int(obj)
    if isinstance(obj, dict) and "id" in obj:
        return int(obj["id"])
    value = getattr(obj, "id", None)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise EvalhubError(f"expected {what} or its integer id, got {type(obj).__name__} {obj!r}")


def parse_time(value: Any) -> float | None:
    """Unix seconds from the server's ISO-8601 UTC strings (``None`` stays ``None``)."""
    if not value:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).replace("Z", "+00:00")
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


def run_labels(runs: Iterable[dict[str, Any]]) -> dict[int, str]:
    """Short labels that tell an experiment's configurations apart.

    Only the parts that vary across runs (model, checkpoint, runtime) are kept: a training-progress
    experiment reads ``step-100``, ``step-200``; a runtime comparison ``hf``, ``vllm``.
    """
    rows = list(runs)
    parts = ("model", "checkpoint", "runtime")
    varying = [p for p in parts if len({r.get(p) for r in rows}) > 1]
    if not varying:
        varying = [p for p in ("model", "checkpoint") if any(r.get(p) for r in rows)]
    labels: dict[int, str] = {}
    for r in rows:
        values = [str(r[p]) for p in varying if r.get(p)]
        label = " · ".join(values) or str(r.get("name") or f"run {r.get('run_id', r.get('id'))}")
        labels[int(r.get("run_id", r.get("id", 0)))] = label
    return labels
