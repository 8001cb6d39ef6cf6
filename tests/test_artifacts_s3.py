"""Artifacts on S3-style storage for a shared deployment: ``evalhub server --artifacts s3://bucket/prefix``
keeps every blob in the bucket through fsspec (s3fs), streams uploads and downloads with bounded memory,
stores one object per content and removes it with the last run that held it.

The S3 here is moto's standalone server (``moto_server``, an S3 implementation over HTTP: no AWS can be
reached from this machine); evalhub talks to it only through s3fs, as it would to AWS S3 or MinIO."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from _servers import ServerProcess

from evalhub.client import Client
from evalhub.errors import NotFound
from evalhub.hub import Hub

pytestmark = pytest.mark.slow

SIZE = 96 * 1024 * 1024
BOUND_MB = 48  # the server holds a part (8 MiB) and a read chunk at a time, never the file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto S3 server on loopback with a bucket; fsspec configured for it through FSSPEC_S3."""
    import s3fs

    port = _free_port()
    log = (tmp_path / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(
                    f"moto_server did not start: {(tmp_path / 'moto.log').read_text()}"
                ) from None
            time.sleep(0.2)
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    monkeypatch.setenv("FSSPEC_S3", json.dumps(options))
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("evalhub-test")
    yield fs
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture
def s3_server(s3: Any, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        f"sqlite:///{tmp_path / 'server' / 'evalhub.db'}",
        tmp_path / "server",
        artifacts="s3://evalhub-test/shared",
    )
    server.start()
    yield server
    server.stop()


def _write(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(size // (1 << 20)):
            block = (i.to_bytes(4, "little") * (1 << 18))[: 1 << 20]
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def test_artifacts_live_in_the_bucket_streamed_both_ways(
    s3: Any, s3_server: ServerProcess, tmp_path: Path
) -> None:
    hub = Hub(Client(s3_server.url, project=f"s{uuid.uuid4().hex[:8]}"))
    run = hub.init_run("weights", system_metrics=False)
    run.finish()
    big = tmp_path / "big.bin"
    sha = _write(big, SIZE)
    warm = tmp_path / "warm.bin"
    _write(warm, 1 << 20)  # botocore loads its service models at the first call: not the file's memory
    hub.upload_artifact(run.id, warm, name="warm.bin")
    hub.download_artifact(run.id, "warm.bin", tmp_path / "warm-back.bin")
    before = _peak_rss_mb(s3_server.proc.pid)
    info = hub.upload_artifact(run.id, big, name="big.bin")
    assert info["sha256"] == sha and info["uri"] == f"s3://evalhub-test/shared/blobs/{sha[:2]}/{sha}"
    assert s3.info(f"evalhub-test/shared/blobs/{sha[:2]}/{sha}")["size"] == SIZE
    assert not any(p.is_file() for p in (s3_server.folder / "artifacts").rglob("*"))  # nothing kept locally
    back = tmp_path / "back.bin"
    hub.download_artifact(run.id, "big.bin", back)
    assert back.stat().st_size == SIZE and hashlib.sha256(back.read_bytes()).hexdigest() == sha
    grew = _peak_rss_mb(s3_server.proc.pid) - before
    assert grew < BOUND_MB, f"the server's memory grew by {grew:.0f} MB for a {SIZE >> 20} MB round trip"

    def blobs() -> list[str]:
        s3.invalidate_cache()  # s3fs lists from its cache; the server wrote in another process
        return [path for path in s3.find("evalhub-test/shared/blobs") if s3.isfile(path)]

    # one object per content; the blob goes with the last run that holds it
    other = hub.init_run("copy", system_metrics=False)
    other.finish()
    hub.upload_artifact(other.id, big, name="same.bin")
    assert len(blobs()) == 2  # big.bin and warm.bin
    assert hub.artifact(other.id, "same.bin")[:8] == back.read_bytes()[:8]
    hub.delete("run", run.id, purge=True)
    assert len(blobs()) == 1  # big.bin, still held by the copy
    hub.delete("run", other.id, purge=True)
    assert blobs() == []


def test_an_object_gone_from_the_bucket_is_a_404_naming_where_it_lived(
    s3: Any, s3_server: ServerProcess, tmp_path: Path
) -> None:
    hub = Hub(Client(s3_server.url, project=f"s{uuid.uuid4().hex[:8]}"))
    run = hub.init_run("gone", system_metrics=False)
    run.finish()
    (tmp_path / "a.txt").write_bytes(b"hello")
    info = hub.upload_artifact(run.id, tmp_path / "a.txt", name="a.txt")
    assert hub.artifact(run.id, "a.txt") == b"hello"
    s3.rm(info["uri"])
    with pytest.raises(NotFound, match=re.escape(f"has no bytes on this server; it lives at {info['uri']}")):
        hub.artifact(run.id, "a.txt")
