"""Weights URIs: local paths, file://, http(s) from a real local http.server (tarball, zip, sha256 by
fragment or sidecar, cache), hf:// offline, unsupported schemes."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from _tinymodel import tiny_path

from evalhub.adapters import CheckpointRef, GenerationParams, load_adapter
from evalhub.adapters.uris import resolve
from evalhub.errors import AdapterError, WeightsNotFound


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list[str]

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A real http.server on a free port serving a folder; yields (base URL, folder, request paths)."""
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, hits
    server.shutdown()
    server.server_close()


def _tarball(folder: Path, target: Path) -> str:
    with tarfile.open(target, "w:gz") as tf:
        tf.add(folder, arcname="tiny-step")
    return hashlib.sha256(target.read_bytes()).hexdigest()


def test_plain_path_and_file_uri_resolve_to_the_folder(tmp_path: Path) -> None:
    assert resolve(str(tmp_path)) == tmp_path.resolve()
    assert resolve(f"file://{tmp_path}") == tmp_path.resolve()


def test_missing_local_path_names_the_uri(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFound, match="nothing-here"):
        resolve(str(tmp_path / "nothing-here"))
    with pytest.raises(WeightsNotFound, match="file://"):
        resolve(f"file://{tmp_path}/nothing-here")


def test_http_tarball_with_sha256_fragment_loads_in_the_hf_adapter(
    http_root: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, root, _ = http_root
    digest = _tarball(tiny_path(), root / "tiny.tar.gz")
    uri = f"{base}/tiny.tar.gz#sha256={digest}"
    folder = resolve(uri, cache_dir=tmp_path / "cache")
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    via_http = load_adapter(CheckpointRef("tiny-gpt", "http", uri, "hf", params={}))
    local = load_adapter(CheckpointRef("tiny-gpt", "local", str(tiny_path()), "hf"))
    params = GenerationParams(max_new_tokens=4, until=("\n",))
    assert [g.text for g in via_http.generate(["3+4= ", "21+5= "], params)] == [
        g.text for g in local.generate(["3+4= ", "21+5= "], params)
    ]


def test_http_download_is_cached(http_root: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    base, root, hits = http_root
    digest = _tarball(tiny_path(), root / "tiny.tar.gz")
    uri = f"{base}/tiny.tar.gz#sha256={digest}"
    first = resolve(uri, cache_dir=tmp_path / "cache")
    downloads = hits.count("/tiny.tar.gz")
    assert resolve(uri, cache_dir=tmp_path / "cache") == first
    assert hits.count("/tiny.tar.gz") == downloads == 1


def test_http_sidecar_sha256_is_checked(http_root: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    base, root, _ = http_root
    digest = _tarball(tiny_path(), root / "tiny.tar.gz")
    (root / "tiny.tar.gz.sha256").write_text(f"{digest}  tiny.tar.gz\n")
    assert (resolve(f"{base}/tiny.tar.gz", cache_dir=tmp_path / "ok") / "config.json").is_file()
    (root / "tiny.tar.gz.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(AdapterError, match="sha256"):
        resolve(f"{base}/tiny.tar.gz", cache_dir=tmp_path / "bad")


def test_http_wrong_fragment_digest_is_refused_and_not_cached(
    http_root: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, root, _ = http_root
    _tarball(tiny_path(), root / "tiny.tar.gz")
    with pytest.raises(AdapterError, match="fail their sha256 check"):
        resolve(f"{base}/tiny.tar.gz#sha256={'1' * 64}", cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("config.json"))


def test_http_zip_archive_is_unpacked(http_root: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    base, root, _ = http_root
    with zipfile.ZipFile(root / "tiny.zip", "w") as zf:
        for item in tiny_path().iterdir():
            zf.write(item, arcname=f"model/{item.name}")
    assert (resolve(f"{base}/tiny.zip", cache_dir=tmp_path / "cache") / "config.json").is_file()


def test_http_missing_file_raises_weights_not_found(
    http_root: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, _, _ = http_root
    with pytest.raises(WeightsNotFound, match=r"absent\.tar\.gz"):
        resolve(f"{base}/absent.tar.gz", cache_dir=tmp_path / "cache")


def test_http_unreachable_host_raises_weights_not_found(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(WeightsNotFound, match=f"127.0.0.1:{port}"):
        resolve(f"http://127.0.0.1:{port}/w.tar.gz", cache_dir=tmp_path / "cache")


def test_hf_uri_offline_without_local_copy_raises_weights_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with pytest.raises(WeightsNotFound, match=r"hf://evalhub-test/absent-model@main.*HF_HUB_OFFLINE"):
        resolve("hf://evalhub-test/absent-model@main")


def test_malformed_and_unknown_uris_are_refused() -> None:
    with pytest.raises(WeightsNotFound, match="hf://org/name"):
        resolve("hf://just-a-name")
    with pytest.raises(WeightsNotFound, match="unsupported scheme 'gs'"):
        resolve("gs://bucket/model")
    with pytest.raises(WeightsNotFound, match="empty"):
        resolve("  ")


def test_archive_member_escaping_the_cache_is_refused(
    http_root: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, root, _ = http_root
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    with tarfile.open(root / "evil.tar.gz", "w:gz") as tf:
        tf.add(evil, arcname="../../escape.txt")
    with pytest.raises(AdapterError, match="outside the cache"):
        resolve(f"{base}/evil.tar.gz", cache_dir=tmp_path / "cache")
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
