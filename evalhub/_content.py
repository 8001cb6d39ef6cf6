"""What a file or folder holds, as one digest: the identity of checkpoint weights, task data and plugin
code when evalhub decides whether finished work can be reused or a request's answer is cached.

A file's digest is the sha256 of its bytes; a big file (over ``FULL_BYTES``) is read at its start, its
middle and its end (``SAMPLE_BYTES`` each) with its size, which tells apart any two checkpoints that
training wrote without reading gigabytes at every load. A folder's digest covers every file under it
(relative path, size, digest), in path order, skipping ``.git`` and ``__pycache__``. Digests are kept
per process for a path whose size and modification time have not changed.

>>> digest("/data/tiny/step-100")
'3f1c…'
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

FULL_BYTES = 64 << 20
SAMPLE_BYTES = 4 << 20
_SKIP = {".git", "__pycache__", ".ipynb_checkpoints"}

_memo: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_digest(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of a file's bytes (sampled for a big file, see the module docstring)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _memo:
            return _memo[key]
    h = hashlib.sha256()
    with p.open("rb") as fh:
        if st.st_size <= FULL_BYTES:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"sampled:{st.st_size}:".encode())
            for offset in (0, st.st_size // 2 - SAMPLE_BYTES // 2, st.st_size - SAMPLE_BYTES):
                fh.seek(max(0, offset))
                h.update(fh.read(SAMPLE_BYTES))
    value = h.hexdigest()
    with _lock:
        _memo[key] = value
    return value


def digest(path: str | os.PathLike[str]) -> str:
    """The digest of a file, or of a folder's every file (relative path, size and digest, in order)."""
    p = Path(path)
    if p.is_file():
        return file_digest(p)
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist")
    h = hashlib.sha256(b"folder\n")
    for root, dirs, files in os.walk(p):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP)
        for name in sorted(files):
            f = Path(root) / name
            if not f.is_file():
                continue
            rel = f.relative_to(p).as_posix()
            h.update(f"{rel}\0{f.stat().st_size}\0{file_digest(f)}\n".encode())
    return h.hexdigest()


__all__ = ["FULL_BYTES", "SAMPLE_BYTES", "digest", "file_digest"]
