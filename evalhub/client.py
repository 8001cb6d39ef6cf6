"""HTTP client of the tracking server: JSON calls, paging, retries, error bodies -> evalhub errors.

>>> client = Client("http://127.0.0.1:8765", token=None, project="default")
>>> client.get("/families", limit=10)["items"]
[]
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

try:  # a fast decoder where installed (the server extra has it); the answers are plain JSON either way
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - the client core alone
    from json import loads as _loads

from evalhub.errors import (
    Conflict,
    ConnectionFailed,
    IncompatibleServer,
    InvalidInput,
    InvalidValue,
    NotFound,
    PayloadTooLarge,
    ServerError,
    Unauthorized,
)
from evalhub.protocol.numbers import to_wire
from evalhub.protocol.responses import PROTOCOL_VERSION

_ERRORS: dict[int, type[ServerError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidInput,
}


def _api_path(path: str) -> str:
    """``/runs/1`` and ``/api/runs/1`` name the same endpoint."""
    if not path.startswith("/"):
        path = "/" + path
    if path == "/api" or path.startswith("/api/"):
        return path
    return "/api" + path


def _query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values; lists of numbers become comma-joined (``run_ids=1,2,3``), lists of strings
    a repeated parameter (``keys=a&keys=b``: a string may hold a comma); bools ``true``/``false``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple, set)):
            items = list(value)
            out[key] = (
                items if items and all(isinstance(v, str) for v in items) else ",".join(str(v) for v in items)
            )
        else:
            out[key] = value
    return out


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """The one retry policy of the client: exponential backoff from ``base`` up to ``cap`` seconds,
    with jitter (half to all of it), for the ``attempt``-th retry (1, 2, …)."""
    return min(cap, base * 2.0 ** min(attempt - 1, 30)) * (0.5 + random.random() / 2)


def encode_json(body: Any) -> bytes:
    """JSON bytes of ``body``: NaN and ±infinity travel as ``"NaN"``/``"Infinity"``/``"-Infinity"``
    (see :mod:`evalhub.protocol.numbers`); what JSON cannot carry raises :class:`InvalidValue`."""
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:
        pass  # a non-finite float somewhere: spell it out (rare, so the common path stays one dumps)
    except TypeError as exc:
        raise InvalidValue(f"cannot send this value to the tracking server as JSON: {exc}") from None
    try:
        return json.dumps(to_wire(body), allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"cannot send this value to the tracking server as JSON: {exc}") from None


def error_from_response(response: httpx.Response) -> ServerError:
    """The evalhub error for an error answer, from its ``{"error": {code, message, field}}`` body."""
    status = response.status_code
    code, message, field = "", "", None
    try:
        body = response.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code") or "")
            message = str(err.get("message") or "")
            field = err.get("field")
        elif isinstance(body, dict) and "detail" in body:
            message = str(body["detail"])
    except ValueError:
        message = response.text[:500]
    if not message:
        message = response.reason_phrase or "error"
    if field and field not in message:
        message = f"{message} (field: {field})"
    where = f"{response.request.method} {response.request.url.path}"
    text = f"{message} [{status} {code or 'error'} on {where}]"
    cls = _ERRORS.get(status, ServerError)
    return cls(text, status=status, code=code, field=field)


UNATTENDED_RETRIES = 30
"""Retries of a client that nobody watches (a worker, a scheduler or a schedule keeper on the cluster):
with the default backoff about 60–125 s of waiting, enough to ride out a tracking server restarted
after a crash, where a person at a notebook wants the error within seconds (``retries=5``)."""


class Client:
    """A connection to one tracking server, for one project.

    Paths may be given with or without the ``/api`` prefix. Connection errors and 5xx answers are
    retried ``retries`` times with exponential backoff (4xx never are: the request itself is wrong);
    an error answer becomes the matching :mod:`evalhub.errors` type.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        project: str = "default",
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.project = project
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        headers = {
            "Accept": "application/json",
            "X-Evalhub-Project": project,
            "X-Evalhub-Protocol": str(PROTOCOL_VERSION),
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # ``transport``: another way to the server (a worker on another node sends through a relay).
        # TCP_NODELAY: httpx writes a request's head and body apart, and with Nagle's algorithm the body
        # waits for the server's delayed ACK of the head: every POST took ~40 ms more on loopback.
        if transport is None:
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def unattended(cls, url: str, token: str | None = None, project: str | None = None,
                   transport: httpx.BaseTransport | None = None) -> Client:  # fmt: skip
        """A client that nobody watches (a worker, a scheduler or a schedule keeper on the cluster):
        it waits out a tracking server's restart (:data:`UNATTENDED_RETRIES`)."""
        return cls(url, token=token, project=project or "default", transport=transport,
                   retries=UNATTENDED_RETRIES)  # fmt: skip

    def __repr__(self) -> str:
        return f"Client(url={self.url!r}, project={self.project!r})"

    # -- transport --------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        retries: int | None = None,
        raw: bool = False,
    ) -> Any:
        """One call with retries; the decoded JSON answer (or the response itself when ``raw``)."""
        url = _api_path(path)
        headers: dict[str, str] = {}
        if json_body is not None:
            content = encode_json(json_body)
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        query = _query(params or {})
        attempts = (self.retries if retries is None else retries) + 1
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._delay(attempt))
            try:
                response = self._http.request(method, url, params=query, content=content, headers=headers)
            except (httpx.TransportError, OSError) as exc:
                last = ConnectionFailed(
                    f"cannot reach the tracking server at {self.url} ({type(exc).__name__}: {exc}); "
                    "is it running? (evalhub.connect() starts an embedded one)"
                )
                continue
            if response.status_code >= 500:
                last = error_from_response(response)
                continue
            if response.status_code >= 400:
                raise error_from_response(response)
            if raw:
                return response
            if not response.content:
                return None
            try:
                return _loads(response.content)
            except ValueError:
                return response.content
        assert last is not None
        raise last

    def _delay(self, attempt: int) -> float:
        return backoff_delay(attempt, self.backoff, self.max_backoff)

    # -- the calls --------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """``GET`` with query parameters (``None`` dropped, lists comma-joined)."""
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        """``POST`` a JSON body (NaN/infinity refused before sending)."""
        return self.request("POST", path, json_body={} if json is None else json, **kw)

    def put_bytes(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> Any:
        """``PUT`` raw bytes (artifacts)."""
        return self.request("PUT", path, content=data, content_type=content_type)

    def put_file(self, path: str, file: str | os.PathLike[str], chunk: int = 1 << 20) -> Any:
        """``PUT`` a file's bytes, streamed from disk in ``chunk``-sized pieces (bounded memory)."""
        source = Path(file)

        def pieces() -> Iterator[bytes]:
            with source.open("rb") as handle:
                while block := handle.read(chunk):
                    yield block

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(source.stat().st_size)}
        try:
            response = self._http.request("PUT", _api_path(path), content=pieces(), headers=headers,
                                          timeout=httpx.Timeout(self.timeout, write=None, read=None))  # fmt: skip
        except (httpx.TransportError, OSError) as exc:
            raise ConnectionFailed(
                f"cannot reach the tracking server at {self.url} ({type(exc).__name__}: {exc})"
            ) from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json()

    def download(self, path: str, target: str | os.PathLike[str], chunk: int = 1 << 20) -> Path:
        """``GET`` raw bytes into ``target``, streamed (bounded memory); the file appears complete or not at all."""
        out = Path(target)
        tmp = out.with_name(f".{out.name}.part")
        try:
            with self._http.stream(
                "GET", _api_path(path), timeout=httpx.Timeout(self.timeout, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                with tmp.open("wb") as handle:
                    for block in response.iter_bytes(chunk):
                        handle.write(block)
        except (httpx.TransportError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise ConnectionFailed(
                f"cannot reach the tracking server at {self.url} ({type(exc).__name__}: {exc})"
            ) from None
        os.replace(tmp, out)
        return out

    def get_bytes(self, path: str, **params: Any) -> bytes:
        """``GET`` raw bytes (artifact contents)."""
        response = self.request("GET", path, params=params, raw=True)
        return bytes(response.content)

    def paged(self, path: str, limit: int = 1000, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, walking ``offset`` in pages of ``limit`` (at most 1000)."""
        limit = max(1, min(int(limit), 1000))
        offset = 0
        while True:
            page = self.get(path, limit=limit, offset=offset, **params)
            items = page.get("items", [])
            yield from items
            offset += len(items)
            total = page.get("total")
            if not items or len(items) < limit or (isinstance(total, int) and offset >= total):
                return

    def health(self) -> dict[str, Any]:
        """``GET /api/health`` without retries (a quick "is it there")."""
        result: dict[str, Any] = self.request("GET", "/health", retries=0)
        return result

    def check_server(self) -> dict[str, Any]:
        """The server's health, after checking it speaks this client's protocol: an incompatible pair
        is :class:`~evalhub.errors.IncompatibleServer` naming both versions."""
        from evalhub._version import __version__

        health: dict[str, Any] = self.request("GET", "/health")
        spoken = int(health.get("protocol") or 1)  # evalhub 0.1.0 did not say: it spoke protocol 1
        if spoken != PROTOCOL_VERSION:
            newer = "server" if spoken < PROTOCOL_VERSION else "client"
            raise IncompatibleServer(
                f"the tracking server at {self.url} is evalhub {health.get('version', '?')} (protocol {spoken}); "
                f"this client is evalhub {__version__} (protocol {PROTOCOL_VERSION}): upgrade the {newer} "
                f"(pip install -U 'evalhub{'[server]' if newer == 'server' else ''}')"
            )
        return health

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_of(source: Any) -> Client:
    """The :class:`Client` of ``source``: a Client itself, or anything with a ``client`` (a Hub, a
    service). The layers below the Hub take either without knowing the Hub."""
    if isinstance(source, Client):
        return source
    found = getattr(source, "client", None)
    if isinstance(found, Client):
        return found
    raise TypeError(f"expected an evalhub Client (or a Hub), got {type(source).__name__}")


def check_number(key: str, value: Any) -> float:
    """``value`` as a float (NaN and ±infinity included: they are values), or :class:`InvalidValue`
    naming ``key`` for what is not a number."""
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise InvalidValue(f"{key!r}: {value} is too large for a 64-bit float") from None
    elif isinstance(value, (str, bytes)) or value is None:
        raise InvalidValue(f"{key!r}: expected a number, got {type(value).__name__} {value!r}")
    else:
        try:
            item = value.item() if hasattr(value, "item") else value
            number = float(item)
        except (TypeError, ValueError, OverflowError):
            raise InvalidValue(f"{key!r}: expected a number, got {type(value).__name__} {value!r}") from None
    return number


__all__ = [
    "UNATTENDED_RETRIES",
    "Client",
    "backoff_delay",
    "check_number",
    "client_of",
    "encode_json",
    "error_from_response",
]
