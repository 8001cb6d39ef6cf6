"""Server settings: where the data lives, who may talk to the server, and how big a request may be."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024


def evalhub_home() -> Path:
    """The user's evalhub home: ``EVALHUB_HOME`` or ``~/.evalhub``."""
    return Path(os.environ.get("EVALHUB_HOME") or Path.home() / ".evalhub")


def default_db_url() -> str:
    return f"sqlite:///{evalhub_home() / 'evalhub.db'}"


@dataclass
class ServerSettings:
    """Everything ``serve`` and ``create_app`` need.

    ``db_url`` is a SQLAlchemy URL (``sqlite:///path`` or ``mysql+pymysql://user:pw@host/db``);
    ``artifacts_dir`` defaults to ``artifacts/`` next to a SQLite file (or under the evalhub home).
    """

    db_url: str = field(default_factory=default_db_url)
    host: str = "127.0.0.1"
    port: int = 0
    auth: str = "none"  # "none" | "token"
    admin_token: str | None = None
    artifacts_dir: Path | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    ready_file: Path | None = None
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.auth not in ("none", "token"):
            raise ValueError(f"auth must be 'none' or 'token', not {self.auth!r}")
        if self.admin_token is None:
            self.admin_token = os.environ.get("EVALHUB_ADMIN_TOKEN") or None
        if self.auth == "token" and not self.admin_token:
            raise ValueError(
                "--auth token needs an admin token: pass --admin-token or set EVALHUB_ADMIN_TOKEN"
            )
        if self.artifacts_dir is None:
            self.artifacts_dir = default_artifacts_dir(self.db_url)
        self.artifacts_dir = Path(self.artifacts_dir)

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "token"


def default_artifacts_dir(db_url: str) -> Path:
    """``artifacts/`` next to a SQLite file, else under the evalhub home."""
    if db_url.startswith("sqlite:///") and not db_url.endswith(":memory:"):
        return Path(db_url[len("sqlite:///") :]).parent / "artifacts"
    return evalhub_home() / "artifacts"
