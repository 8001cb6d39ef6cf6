"""Where the tracking server is: configuration traits, the environment, or the embedded server."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from traitlets import Float, Unicode
from traitlets.config import Configurable


class EvalhubJupyter(Configurable):
    """Settings of the evalhub server extension (``c.EvalhubJupyter.<name>`` in a Jupyter config).

    Every setting left empty falls back to the environment, then to the embedded server.
    """

    server_url = Unicode(
        "", config=True, help="URL of the evalhub tracking server (else $EVALHUB_URL, else the embedded one)."
    )
    token = Unicode("", config=True, help="Bearer token for the tracking server (else $EVALHUB_TOKEN).")
    project = Unicode(
        "", config=True, help="Project to read (else $EVALHUB_PROJECT; the token's with auth on)."
    )
    ray_dashboard_url = Unicode(
        "",
        config=True,
        help="Ray dashboard link (else $EVALHUB_RAY_DASHBOARD, else derived from $RAY_ADDRESS).",
    )
    evalhub_home = Unicode(
        "", config=True, help="evalhub home holding server.json (else $EVALHUB_HOME or ~/.evalhub)."
    )
    request_timeout = Float(
        30.0, config=True, help="Seconds to wait for the tracking server on each request."
    )


@dataclass(frozen=True)
class Upstream:
    """A tracking server to proxy to. ``source`` says where it came from: config, env or embedded."""

    url: str
    token: str | None
    project: str | None
    source: str


class NoServer(Exception):
    """No tracking server is configured or running; the message says what to do."""


def evalhub_home(settings: EvalhubJupyter, environ: Mapping[str, str]) -> Path:
    """The evalhub home folder the embedded server writes ``server.json`` into."""
    home = settings.evalhub_home or environ.get("EVALHUB_HOME") or "~/.evalhub"
    return Path(home).expanduser()


def resolve_upstream(settings: EvalhubJupyter, environ: Mapping[str, str] | None = None) -> Upstream:
    """Find the tracking server: traits first, then the environment, then the embedded server.

    Read on every request, so a server started after Jupyter (``evalhub.connect()`` in a notebook)
    is picked up without a restart. Raises :class:`NoServer` when there is none.
    """
    env = os.environ if environ is None else environ
    token = settings.token or env.get("EVALHUB_TOKEN") or None
    project = settings.project or env.get("EVALHUB_PROJECT") or None
    if settings.server_url:
        return Upstream(settings.server_url.rstrip("/"), token, project, "config")
    if env.get("EVALHUB_URL"):
        return Upstream(env["EVALHUB_URL"].rstrip("/"), token, project, "env")

    server_json = evalhub_home(settings, env) / "server.json"
    hint = (
        "set EVALHUB_URL (or c.EvalhubJupyter.server_url) to a tracking server, "
        "or start the embedded one with evalhub.connect() in a notebook"
    )
    try:
        info = json.loads(server_json.read_text())
    except FileNotFoundError:
        raise NoServer(f"No evalhub tracking server: {server_json} does not exist; {hint}.") from None
    except (OSError, ValueError) as exc:
        raise NoServer(f"No evalhub tracking server: cannot read {server_json} ({exc}); {hint}.") from None
    url = info.get("url") if isinstance(info, dict) else None
    if not isinstance(url, str) or not url:
        raise NoServer(f"No evalhub tracking server: {server_json} names no url; {hint}.")
    pid = info.get("pid")
    if isinstance(pid, int) and not _pid_alive(pid):
        raise NoServer(f"The embedded evalhub server (pid {pid}, {url}) is not running; {hint}.")
    return Upstream(url.rstrip("/"), token or info.get("token") or None, project, "embedded")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


LOCAL_RAY_DASHBOARD = "http://127.0.0.1:8265"


def _local_ray_address_file() -> Path:
    # Where `ray.init()` / `ray start --head` record a running local cluster (removed on shutdown).
    return Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"


def ray_dashboard_url(
    settings: EvalhubJupyter, environ: Mapping[str, str] | None = None, *, local_ray_file: Path | None = None
) -> str | None:
    """The Ray dashboard link: trait, $EVALHUB_RAY_DASHBOARD, derived from $RAY_ADDRESS, else the
    local cluster's default dashboard while one runs on this machine.

    ``RAY_ADDRESS`` may be the dashboard itself (``http://head:8265``, what ``ray job submit``
    takes), a Ray client address (``ray://head:10001``) or a GCS address (``head:6379``); the
    dashboard is then assumed on its default port 8265 of the same host. ``auto``/``local`` mean
    a local cluster: ``http://127.0.0.1:8265``. Without any of these, a local cluster started by
    ``ray.init()`` (the embedded default) is noticed through ``/tmp/ray/ray_current_cluster``.
    """
    env = os.environ if environ is None else environ
    if settings.ray_dashboard_url:
        return settings.ray_dashboard_url
    if env.get("EVALHUB_RAY_DASHBOARD"):
        return env["EVALHUB_RAY_DASHBOARD"]
    address = env.get("RAY_ADDRESS", "").strip()
    if not address:
        local = _local_ray_address_file() if local_ray_file is None else local_ray_file
        return LOCAL_RAY_DASHBOARD if local.exists() else None
    if address in ("auto", "local"):
        return LOCAL_RAY_DASHBOARD
    if address.startswith(("http://", "https://")):
        return address.rstrip("/")
    host = urlsplit(address if "://" in address else f"//{address}").hostname
    return f"http://{host}:8265" if host else None
