"""Weights URIs -> local folders: plain paths, ``file://``, ``http(s)://``, ``hf://org/name@rev``, ``s3://``.

Remote weights are fetched once into a cache (``EVALHUB_HOME/cache`` by default) and reused:

- ``http(s)://host/model.tar.gz#sha256=<hex>``: downloaded, checked against the fragment's digest (or a
  ``<uri>.sha256`` sidecar when the server has one), archives (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``)
  unpacked; a single top-level folder in an archive is the result.
- ``hf://org/name@rev``: ``huggingface_hub.snapshot_download`` (``local_files_only`` when
  ``HF_HUB_OFFLINE=1``).
- ``s3://bucket/prefix``: copied with ``fsspec`` (needs ``s3fs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from evalhub.errors import AdapterError, WeightsNotFound

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def default_cache_dir() -> Path:
    """``$EVALHUB_HOME/cache`` (``~/.evalhub/cache`` when unset)."""
    home = os.environ.get("EVALHUB_HOME") or str(Path.home() / ".evalhub")
    return Path(home) / "cache"


def resolve(uri: str, cache_dir: str | Path | None = None) -> Path:
    """A local path holding the weights behind ``uri``; downloads into ``cache_dir`` when remote.

    >>> resolve("/data/tiny/step-100")
    PosixPath('/data/tiny/step-100')

    Raises ``WeightsNotFound`` (naming the URI) when nothing is there.
    """
    if not uri or not str(uri).strip():
        raise WeightsNotFound("a checkpoint has an empty weights URI")
    uri = str(uri).strip()
    scheme = urlsplit(uri).scheme.lower()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        return _local(uri)
    if scheme in ("http", "https"):
        return _http(uri, cache)
    if scheme == "hf":
        return _hf(uri, cache)
    if scheme == "s3":
        return _s3(uri, cache)
    raise WeightsNotFound(
        f"weights URI {uri!r} has an unsupported scheme {scheme!r}: use a path, file://, http(s)://, hf:// or s3://"
    )


def _local(uri: str) -> Path:
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        path = Path(unquote(parts.netloc + parts.path))
    else:
        path = Path(uri).expanduser()
    if not path.exists():
        raise WeightsNotFound(f"weights not found: {uri} does not exist")
    return path.resolve()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_digest(url: str, fragment: str) -> str | None:
    """The sha256 from ``#sha256=...``, else from a ``<url>.sha256`` sidecar, else ``None``."""
    for part in fragment.split("&"):
        key, _, value = part.partition("=")
        if key == "sha256" and value:
            return value.strip().lower()
    import httpx

    try:
        answer = httpx.get(url + ".sha256", timeout=30.0, follow_redirects=True)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    words = answer.text.split()
    return words[0].strip().lower() if words else None


def _http(uri: str, cache: Path) -> Path:
    parts = urlsplit(uri)
    url = uri.split("#", 1)[0]
    name = Path(unquote(parts.path)).name or "weights"
    target = cache / "http" / hashlib.sha256(url.encode()).hexdigest()[:16]
    done = target / ".complete"
    if done.exists():
        return _unpacked_root(target / "content")
    target.mkdir(parents=True, exist_ok=True)
    with _node_lock(target):  # workers of one node download a URI once; the others wait for it
        if done.exists():
            return _unpacked_root(target / "content")
        return _download(uri, url, name, parts.fragment, target, done)


@contextlib.contextmanager
def _node_lock(target: Path) -> Iterator[None]:
    import fcntl

    with open(target / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _download(uri: str, url: str, name: str, fragment: str, target: Path, done: Path) -> Path:
    import httpx

    expected = _expected_digest(url, fragment)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        download = Path(tmp) / name
        try:
            with httpx.stream("GET", url, timeout=60.0, follow_redirects=True) as answer:
                if answer.status_code == 404:
                    raise WeightsNotFound(f"weights not found: {uri} answered 404")
                if answer.status_code >= 400:
                    raise WeightsNotFound(f"weights not found: {uri} answered HTTP {answer.status_code}")
                with download.open("wb") as fh:
                    for block in answer.iter_bytes(1 << 20):
                        fh.write(block)
        except httpx.HTTPError as exc:
            raise WeightsNotFound(f"weights not found: cannot download {uri}: {exc}") from exc
        if expected is not None:
            actual = _sha256_file(download)
            if actual != expected:
                raise AdapterError(
                    f"weights at {uri} fail their sha256 check: expected {expected}, got {actual}; "
                    "the file changed or the digest is wrong"
                )
        content = Path(tmp) / "content"
        content.mkdir()
        if name.endswith(ARCHIVE_SUFFIXES):
            _unpack(download, content)
        else:
            shutil.move(str(download), content / name)
        final = target / "content"
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(content), final)
    done.write_text(expected or "")
    return _unpacked_root(target / "content")


def _unpack(archive: Path, into: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for member_name in zf.namelist():
                _check_member(member_name, into)
            zf.extractall(into)
        return
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            _check_member(member.name, into)
            if member.issym() or member.islnk():
                raise AdapterError(f"archive {archive.name} holds a link ({member.name}); refused")
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: let tarfile refuse odd members too
            tf.extractall(into, filter="data")
        else:  # pragma: no cover
            tf.extractall(into)


def _check_member(name: str, into: Path) -> None:
    target = (into / name).resolve()
    if not str(target).startswith(str(into.resolve())):
        raise AdapterError(f"archive member {name!r} would land outside the cache; refused")


def _unpacked_root(content: Path) -> Path:
    """The single top-level folder of an unpacked archive, else the content folder itself."""
    entries = [p for p in content.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    if len(entries) == 1 and entries[0].is_file():
        return content  # a single file: the folder that holds it
    return content


def _hf(uri: str, cache: Path) -> Path:
    rest = uri[len("hf://") :]
    repo, _, revision = rest.partition("@")
    if repo.count("/") < 1 or not repo.strip("/"):
        raise WeightsNotFound(f"weights URI {uri!r} is not of the form hf://org/name[@revision]")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise AdapterError("hf:// weights need huggingface_hub: pip install 'evalhub[hf]'") from exc
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        path = snapshot_download(
            repo_id=repo.strip("/"),
            revision=revision or None,
            local_files_only=offline,
            cache_dir=os.environ.get("HF_HUB_CACHE") or None,
        )
    except Exception as exc:  # huggingface_hub raises many types; all mean "not there"
        hint = " (HF_HUB_OFFLINE=1: only the local Hugging Face cache was searched)" if offline else ""
        raise WeightsNotFound(f"weights not found: {uri}{hint}: {exc}") from exc
    return Path(path)


def _s3(uri: str, cache: Path) -> Path:
    try:
        import fsspec
    except ImportError as exc:
        raise AdapterError("s3:// weights need fsspec and s3fs: pip install fsspec s3fs") from exc
    target = cache / "s3" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    done = target / ".complete"
    if done.exists():
        return target / "content"
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.exists(path):
            raise WeightsNotFound(f"weights not found: {uri} does not exist")
        target.mkdir(parents=True, exist_ok=True)
        fs.get(path.rstrip("/") + "/", str(target / "content"), recursive=True)
    except WeightsNotFound:
        raise
    except ImportError as exc:
        raise AdapterError(f"s3:// weights need s3fs: pip install s3fs ({exc})") from exc
    except Exception as exc:
        raise WeightsNotFound(f"weights not found: cannot copy {uri}: {exc}") from exc
    done.write_text("")
    return target / "content"
