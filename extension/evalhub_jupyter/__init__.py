"""evalhub_jupyter: the JupyterLab side of evalhub.

Two parts ship in the ``evalhub`` wheel:

- the prebuilt lab extension ``evalhub-jupyter`` (the EvalHub sidebar), installed under
  ``share/jupyter/labextensions/evalhub-jupyter``;
- this Jupyter server extension, which proxies ``/evalhub/api/*`` to the tracking server so the
  browser only ever talks to its own origin, and answers ``/evalhub/config``.

Configure it with traits (``c.EvalhubJupyter.server_url = "http://host:8000"``) or the
environment (``EVALHUB_URL``, ``EVALHUB_TOKEN``, ``EVALHUB_PROJECT``, ``EVALHUB_RAY_DASHBOARD``);
with neither, it follows the embedded server that ``evalhub.connect()`` starts
(``$EVALHUB_HOME/server.json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalhub_jupyter._settings import EvalhubJupyter

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

__all__ = ["EvalhubJupyter"]

__version__ = "0.1.0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt lab extension lives inside this package (for ``labextension develop``)."""
    return [{"src": "labextension", "dest": "evalhub-jupyter"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "evalhub_jupyter"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    """Register the proxy and config handlers on a running Jupyter server."""
    from evalhub_jupyter._handlers import setup_handlers

    settings = EvalhubJupyter(parent=serverapp, config=serverapp.config)
    setup_handlers(serverapp.web_app, settings)
    serverapp.log.info(
        "evalhub_jupyter: proxying %s/evalhub/api/* to the tracking server", serverapp.base_url
    )
