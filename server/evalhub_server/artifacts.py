"""Artifacts: named files of a run, streamed to disk (any size, bounded memory) and kept once per
content under ``<artifacts>/blobs/<sha256[:2]>/<sha256>``; a run's artifact ``name`` points at its blob.

``<artifacts>`` is a local folder, or any fsspec URL for a shared deployment (``s3://bucket/prefix``
with ``s3fs`` installed; its options from fsspec's own configuration, e.g. ``FSSPEC_S3_ENDPOINT_URL``, or
the usual ``AWS_*`` variables). Uploads are received into a local staging folder first (hashed as they
come), then copied to their content address; downloads stream from the store in chunks.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Invalid, NotFound
from .rows import count, iso, now, page
from .settings import is_remote

_BLOCK = 8 << 20  # the part size of a remote upload (S3's multipart needs at least 5 MiB)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._ +=-]{0,254}$")


class Upload:
    """A file being received: written in chunks, hashed and counted as it comes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.sha256.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Stored:
    """Where an artifact's bytes are: a local file (``path``), or a file of a remote store (``read``)."""

    name: str
    size: int
    path: Path | None = None
    fs: Any = None
    key: str = ""

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The remote file's bytes, ``size`` at a time (bounded memory)."""
        with self.fs.open(self.key, "rb", block_size=size, cache_type="none") as fh:
            while block := fh.read(size):
                yield block


class ArtifactStore:
    def __init__(self, db: Database, root: str | Path, staging: Path | None = None) -> None:
        self.db = db
        self.location = str(root)
        self.fs: Any = None
        if is_remote(root):
            try:
                import fsspec

                self.fs, self.base = fsspec.core.url_to_fs(self.location)
            except ImportError as exc:
                raise ValueError(
                    f"artifacts at {self.location} need the fsspec backend of that store: {exc} "
                    "(for s3://, pip install s3fs)"
                ) from exc
            self.root = Path(staging) if staging is not None else Path.cwd() / "evalhub-staging"
        else:
            self.root = Path(self.location[len("file://") :] if self.location.startswith("file://") else root)

    def _check(self, conn: sa.Connection, pid: int, run_id: int) -> None:
        if (
            conn.execute(
                sa.select(t.runs.c.id).where(t.runs.c.id == run_id, t.runs.c.project_id == pid)
            ).first()
            is None
        ):
            raise NotFound(f"run {run_id} not found in this project")

    def check_name(self, name: str) -> None:
        if not _NAME.match(name) or name in (".", ".."):
            raise Invalid(
                f"artifact name '{name}' is not allowed: use letters, digits and . _ - + = (no slashes)",
                field="path.name",
            )

    def check_run(self, pid: int, run_id: int) -> None:
        with self.db.read() as conn:
            self._check(conn, pid, run_id)

    def put(self, pid: int, run_id: int, name: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` as the artifact ``name`` of a run (see :meth:`receive` for a stream)."""
        self.check_name(name)
        self.check_run(pid, run_id)
        sink = self.open_upload()
        sink.write(data)
        return self.commit_upload(run_id, name, sink)

    def open_upload(self) -> Upload:
        """A temporary file under the store that hashes what is written to it (bounded memory)."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return Upload(tmp / f"upload-{uuid.uuid4().hex}")

    def commit_upload(self, run_id: int, name: str, upload: Upload) -> dict[str, Any]:
        """Move a finished upload to its content address (``blobs/<sha256[:2]>/<sha256>``, stored once
        however many runs hold the same bytes) and record it as the run's artifact ``name``."""
        upload.close()
        digest = upload.sha256.hexdigest()
        if self.fs is not None:
            key = f"{self.base}/blobs/{digest[:2]}/{digest}"
            try:
                if not self.fs.exists(key):  # an object store shows the object once it is whole
                    with upload.path.open("rb") as src, self.fs.open(key, "wb", block_size=_BLOCK) as out:
                        shutil.copyfileobj(src, out, 1 << 20)
            finally:
                upload.path.unlink(missing_ok=True)
            uri = self.fs.unstrip_protocol(key)
        else:
            blob = self.root / "blobs" / digest[:2] / digest
            blob.parent.mkdir(parents=True, exist_ok=True)
            if blob.exists():
                upload.path.unlink(missing_ok=True)
            else:
                os.replace(upload.path, blob)
            uri = blob.resolve().as_uri()
        row = {
            "run_id": run_id,
            "name": name,
            "uri": uri,
            "size": upload.size,
            "sha256": digest,
            "created_at": now(),
        }
        self.db.write(
            lambda conn: self.db.upsert(
                conn, t.artifacts, [row], update=("uri", "size", "sha256", "created_at")
            )
        )
        return {"name": name, "size": upload.size, "sha256": digest, "uri": row["uri"]}

    def list(self, pid: int, run_id: int, limit: int, offset: int) -> dict[str, Any]:
        a = t.artifacts.c
        q = sa.select(t.artifacts).where(a.run_id == run_id).order_by(a.name)
        with self.db.read() as conn:
            self._check(conn, pid, run_id)
            items = [
                {
                    "name": r.name,
                    "uri": r.uri,
                    "size": r.size,
                    "sha256": r.sha256,
                    "created_at": iso(r.created_at),
                }
                for r in conn.execute(q.limit(limit).offset(offset))
            ]
            return page(items, count(conn, q), limit, offset)

    def remove_files(self, run_id: int) -> None:
        """After a purge: the blobs no artifact refers to any more, and a 0.1.0-style run folder."""
        with self.db.read() as conn:
            held = set(conn.execute(sa.select(t.artifacts.c.sha256).distinct()).scalars())
        if self.fs is not None:
            blobs = f"{self.base}/blobs"
            gone = [
                k
                for k in (self.fs.find(blobs) if self.fs.exists(blobs) else [])
                if k.rsplit("/", 1)[-1] not in held
            ]
            if gone:
                self.fs.rm(gone)
            return
        shutil.rmtree(self.root / str(run_id), ignore_errors=True)
        blobs_dir = self.root / "blobs"
        if not blobs_dir.is_dir():
            return
        for folder in blobs_dir.iterdir():
            for blob in folder.iterdir():
                if blob.name not in held:
                    blob.unlink(missing_ok=True)

    def stored(self, pid: int, run_id: int, name: str) -> Stored:
        """Where an artifact's bytes are (only files of this server's store are served)."""
        a = t.artifacts.c
        with self.db.read() as conn:
            self._check(conn, pid, run_id)
            row = conn.execute(sa.select(t.artifacts).where(a.run_id == run_id, a.name == name)).first()
        if row is None:
            raise NotFound(f"run {run_id} has no artifact '{name}'")
        missing = NotFound(
            f"artifact '{name}' of run {run_id} has no bytes on this server; it lives at {row.uri}"
        )
        if self.fs is not None:
            key = self.fs._strip_protocol(row.uri)
            if not row.uri.startswith(self.fs.unstrip_protocol(self.base) + "/") or not self.fs.exists(key):
                raise missing
            return Stored(name, int(row.size), fs=self.fs, key=key)
        root = self.root.resolve()
        path = Path(unquote(urlparse(row.uri).path)) if row.uri.startswith("file://") else None
        if path is None or root not in path.parents or not path.is_file():
            raise missing
        return Stored(name, int(row.size), path=path)
