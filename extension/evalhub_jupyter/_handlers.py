"""Tornado handlers: ``/evalhub/api/*`` proxied to the tracking server, and ``/evalhub/config``.

Every handler needs the Jupyter user to be logged in (``web.authenticated``: an API handler
answers 403 otherwise) and authorized on the ``evalhub`` resource. The browser's own credentials
(its Jupyter token or cookie) never travel upstream: the proxy sends the tracking server's token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from evalhub_jupyter import __version__
from evalhub_jupyter._settings import EvalhubJupyter, NoServer, ray_dashboard_url, resolve_upstream

if TYPE_CHECKING:
    from tornado.web import Application

AUTH_RESOURCE = "evalhub"
# Request headers the browser may pass on; everything else (cookies, Jupyter's Authorization,
# XSRF) stays here.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "X-Evalhub-Project")
# Response headers worth passing back; hop-by-hop and length headers are tornado's business.
FORWARDED_RESPONSE_HEADERS = ("Content-Disposition", "ETag", "Last-Modified", "Cache-Control")

_Method = Callable[..., Awaitable[None]]
# jupyter_server's `authorized` is untyped; these keep the handlers typed.
_may_read: Callable[[_Method], _Method] = authorized(action="read")
_may_write: Callable[[_Method], _Method] = authorized(action="write")


class _EvalhubHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, evalhub: EvalhubJupyter) -> None:
        self.evalhub = evalhub

    def write_evalhub_error(self, status: int, code: str, message: str) -> None:
        """Answer with the tracking server's error shape, so the sidebar reads one format."""
        self.set_status(status)
        self.finish(json.dumps({"error": {"code": code, "message": message, "field": None}}))


class ProxyHandler(_EvalhubHandler):
    """Forward a request under ``/evalhub/api/`` to ``<tracking server>/api/``, status and body as they come."""

    async def _forward(self, path: str) -> None:
        if any(part in ("..", ".") for part in path.split("/")):
            self.write_evalhub_error(400, "invalid", f"Path segments '.' and '..' are not allowed: {path!r}.")
            return
        try:
            upstream = resolve_upstream(self.evalhub)
        except NoServer as exc:
            self.write_evalhub_error(503, "unavailable", str(exc))
            return

        url = f"{upstream.url}/api/{path}"
        if self.request.query:
            url = f"{url}?{self.request.query}"
        headers = {k: v for k in FORWARDED_REQUEST_HEADERS if (v := self.request.headers.get(k))}
        if upstream.token:
            headers["Authorization"] = f"Bearer {upstream.token}"
        if upstream.project:
            headers["X-Evalhub-Project"] = upstream.project
        method = self.request.method or "GET"
        body: bytes | None = self.request.body
        if method in ("POST", "PUT", "PATCH"):
            body = body or b""
        else:
            body = None
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=body,
            request_timeout=self.evalhub.request_timeout,
            connect_timeout=min(10.0, self.evalhub.request_timeout),
            follow_redirects=False,
            decompress_response=True,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:  # no HTTP answer: refused, timed out, bad host
            # raise_error=False only covers HTTP statuses; a 599 (timeout) is an HTTPClientError.
            self.write_evalhub_error(
                502,
                "unavailable",
                f"The evalhub tracking server at {upstream.url} ({upstream.source}) did not answer: {exc}.",
            )
            return
        if response.code == 599:
            reason = response.error or "no answer"
            self.write_evalhub_error(
                502,
                "unavailable",
                f"The evalhub tracking server at {upstream.url} ({upstream.source}) did not answer: {reason}.",
            )
            return

        self.set_status(response.code, response.reason)
        for name in FORWARDED_RESPONSE_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        content_type = response.headers.get("Content-Type", "application/json")
        if response.code in (204, 304):
            self.finish(set_content_type=content_type)
            return
        self.finish(response.body or b"", set_content_type=content_type)

    @web.authenticated
    @_may_read
    async def get(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @_may_write
    async def post(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @_may_write
    async def put(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @_may_write
    async def patch(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @_may_write
    async def delete(self, path: str) -> None:
        await self._forward(path)


class ConfigHandler(_EvalhubHandler):
    """``GET /evalhub/config``: where the tracking server and the Ray dashboard are."""

    @web.authenticated
    @_may_read
    async def get(self) -> None:
        answer: dict[str, Any] = {
            "version": __version__,
            "api_base": url_path_join(self.base_url, "evalhub", "api"),
            "ray_dashboard_url": ray_dashboard_url(self.evalhub),
        }
        try:
            upstream = resolve_upstream(self.evalhub)
        except NoServer as exc:
            answer.update(server_url=None, source=None, project=None, authenticated=False, problem=str(exc))
        else:
            answer.update(
                server_url=upstream.url,
                source=upstream.source,
                project=upstream.project,
                authenticated=upstream.token is not None,
                problem=None,
            )
        self.finish(json.dumps(answer))


def setup_handlers(web_app: Application, evalhub: EvalhubJupyter) -> None:
    """Add the evalhub routes under the server's base URL."""
    base_url = web_app.settings["base_url"]
    # The live settings, for code (and tests) that want to read or change them after start-up.
    web_app.settings["evalhub_jupyter"] = evalhub
    kwargs = {"evalhub": evalhub}
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, "evalhub", "api", "(.*)"), ProxyHandler, kwargs),
            (url_path_join(base_url, "evalhub", "config"), ConfigHandler, kwargs),
        ],
    )
