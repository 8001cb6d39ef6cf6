"""Server settings: where the data lives, who may talk to the server, and how big a request may be."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_TEXT_BYTES = 2 * 1024 * 1024
DEFAULT_LEASE_S = 60.0
DEFAULT_MAX_ARTIFACT_BYTES = 64 * 1024**3


def evalhub_home() -> Path:
    """The user's evalhub home: ``EVALHUB_HOME`` or ``~/.evalhub``."""
    return Path(os.environ.get("EVALHUB_HOME") or Path.home() / ".evalhub")


def default_db_url() -> str:
    return f"sqlite:///{evalhub_home() / 'evalhub.db'}"


def is_remote(location: str | Path) -> bool:
    """Whether an artifacts location is an fsspec URL other than a local path (``s3://``, ``gs://``...)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


@dataclass
class ServerSettings:
    """Everything ``serve`` and ``create_app`` need.

    ``db_url`` is a SQLAlchemy URL (``sqlite:///path`` or ``mysql://user:pw@host/db``, whose driver
    ``db.normalize_url`` picks);
    ``artifacts_dir`` defaults to ``artifacts/`` next to a SQLite file (or under the evalhub home); it
    may be an fsspec URL (``s3://bucket/prefix``), uploads then staged in ``staging_dir`` (by default
    ``artifacts/staging`` where the local folder would be).
    """

    db_url: str = field(default_factory=default_db_url)
    host: str = "127.0.0.1"
    port: int = 0
    auth: str = "none"  # "none" | "token"
    admin_token: str | None = None
    artifacts_dir: Path | str | None = None
    staging_dir: Path | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES  # one artifact upload (streamed to disk)
    # one text field (a prompt, an output, a log line, a JSON object): refused above this with a 422.
    # On MySQL/MariaDB it is lowered at start to an eighth of max_allowed_packet, so a row always fits.
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    # how long a running attempt may stay silent before the reaper declares it lost
    lease_s: float = DEFAULT_LEASE_S
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
        if self.max_text_bytes < 256:
            raise ValueError(f"max_text_bytes must be at least 256, got {self.max_text_bytes}")
        self.max_text_bytes = min(self.max_text_bytes, self.max_request_bytes)
        if not 0.5 <= self.lease_s <= 86400:
            raise ValueError(f"lease_s must be between 0.5 and 86400 seconds, got {self.lease_s}")
        if self.artifacts_dir is None:
            self.artifacts_dir = default_artifacts_dir(self.db_url)
        if is_remote(self.artifacts_dir):
            self.artifacts_dir = str(self.artifacts_dir)
            if self.staging_dir is None:
                self.staging_dir = default_artifacts_dir(self.db_url) / "staging"
        else:
            self.artifacts_dir = Path(self.artifacts_dir)

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "token"


def default_artifacts_dir(db_url: str) -> Path:
    """``artifacts/`` next to a SQLite file, else under the evalhub home."""
    if db_url.startswith("sqlite:///") and not db_url.endswith(":memory:"):
        return Path(db_url[len("sqlite:///") :]).parent / "artifacts"
    return evalhub_home() / "artifacts"
