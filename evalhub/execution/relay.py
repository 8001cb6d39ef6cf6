"""Workers on other machines reach a tracking server that listens on the submitting machine's loopback
through a relay: a Ray actor pinned to the node that can reach the server, forwarding each HTTP
request of a worker's client (every event batch, lookup and upload) and handing the answer back.

When is the relay used (``EVALHUB_RELAY``, read by the submitting process):

- ``auto`` (the default): when the server's URL is loopback (the embedded server) and the worker runs
  on another Ray node than the one the experiment was submitted from;
- ``always``: for every worker, whatever its node (everything here shares one loopback: this is how the
  relay is tested; a true network partition is not);
- ``never``: workers talk to the server directly; a worker that cannot reach it fails its runs, saying
  that a shared server is needed.

A worker's client keeps its retries: a relay that is away (its node gone) is a connection error like
any other, retried with backoff.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import httpx

RELAY = "evalhub-relay"
MODES = ("auto", "always", "never")


def mode() -> str:
    """The relay setting (``EVALHUB_RELAY``: auto, always or never)."""
    value = os.environ.get("EVALHUB_RELAY", "auto").strip().lower() or "auto"
    if value not in MODES:
        from evalhub.errors import ClusterError

        raise ClusterError(f"EVALHUB_RELAY={value!r}: use one of {', '.join(MODES)}")
    return value


def loopback(url: str) -> bool:
    """Whether ``url`` names this machine's loopback (only processes on this machine reach it)."""
    host = (urlsplit(url).hostname or "").lower()
    return host.startswith("127.") or host in ("localhost", "::1")


def relay_name(url: str) -> str:
    import hashlib

    return f"{RELAY}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


class Relay:
    """The actor: forwards requests to the server at ``url`` from the node it is pinned to."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, read=300.0))
        self.forwarded = 0  # requests answered by the server, for stats()

    def forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request; a connection error comes back as status 0 with its text (the worker's client
        turns it into its own connection error and retries)."""
        try:
            answer = self.http.request(method, self.url + path, headers=headers, content=body)
        except httpx.HTTPError as exc:
            return 0, [], f"{type(exc).__name__}: {exc}".encode()
        self.forwarded += 1
        return answer.status_code, list(answer.headers.multi_items()), answer.content

    def ping(self) -> str:
        return self.url

    def stats(self) -> dict[str, Any]:
        """Where it forwards to and how many requests it has forwarded."""
        return {"url": self.url, "forwarded": self.forwarded}


class RelayTransport(httpx.BaseTransport):
    """An httpx transport that sends every request through the relay actor."""

    def __init__(self, actor: Any, timeout: float = 330.0) -> None:
        self.actor = actor
        self.timeout = timeout

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import ray

        body = request.read()
        path = request.url.raw_path.decode()
        headers = [
            (k, v) for k, v in request.headers.multi_items() if k.lower() not in ("host", "content-length")
        ]
        try:
            status, answer_headers, content = ray.get(
                self.actor.forward.remote(request.method, path, headers, body), timeout=self.timeout
            )
        except Exception as exc:  # the relay (or its node) is away: a connection error, retried
            raise httpx.ConnectError(
                f"the relay to the tracking server is away: {exc}", request=request
            ) from exc
        if status == 0:
            raise httpx.ConnectError(
                f"the relay could not reach the tracking server: {content.decode()}", request=request
            )
        skip = ("content-encoding", "transfer-encoding", "content-length")
        kept = [(k, v) for k, v in answer_headers if k.lower() not in skip]
        return httpx.Response(status, headers=kept, content=content, request=request)


def start_relay(url: str, node_id: str) -> dict[str, str]:
    """Make sure the relay of ``url`` runs, pinned to ``node_id`` (call while connected to Ray);
    returns what a worker needs to find it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from evalhub.execution.cluster import NAMESPACE

    name = relay_name(url)
    actor = (
        ray.remote(Relay)
        .options(
            name=name,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_concurrency=64,
            max_restarts=-1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        )
        .remote(url)
    )
    ray.get(actor.ping.remote(), timeout=120)
    return {"name": name, "namespace": NAMESPACE, "node_id": node_id}


__all__ = ["MODES", "RELAY", "Relay", "RelayTransport", "loopback", "mode", "relay_name", "start_relay"]
