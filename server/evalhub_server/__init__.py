"""evalhub's tracking server: FastAPI + SQLAlchemy 2 + Alembic over SQLite (embedded) or MySQL/MariaDB.

    from evalhub_server import ServerSettings, serve
    serve(ServerSettings(db_url="sqlite:////tmp/evalhub.db", port=0, ready_file=Path("ready.json")))

or ``python -m evalhub_server --db URL --port 0 --ready-file ready.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .runner import main, serve
    from .settings import ServerSettings


def __getattr__(name: str) -> Any:
    # Lazy: importing the package stays cheap for the CLI.
    if name in ("serve", "main", "parse_args"):
        from . import runner

        return getattr(runner, name)
    if name == "ServerSettings":
        from .settings import ServerSettings

        return ServerSettings
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["ServerSettings", "__version__", "create_app", "main", "serve"]
