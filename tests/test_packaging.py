"""The distribution as a user installs it: the wheel of this working tree in a fresh venv.

- ``evalhub[server]`` alone: under 120 MB, no notebook package in it, ``evalhub server`` answering,
  a training script's ``run.log`` stored, and a notebook part naming the extra it needs;
- the same venv plus JupyterLab: the sidebar (labextension) and the server extension enabled;
- the sdist carries the prebuilt sidebar.

The wheel is built once per session. pip may use its cache and this machine's package mirror.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MAX_SERVER_VENV_MB = 120
NOTEBOOK_MODULES = ("polars", "IPython", "anywidget", "altair", "vl_convert", "numpy", "scipy", "traitlets")


def _env() -> dict[str, str]:
    """The environment of a command in the fresh venv: nothing of this venv leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(
    args: list[str | Path], timeout: float = 600, env: dict[str, str] | None = None, **kwargs: Any
) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**_env(), **(env or {})},
        **kwargs,
    )
    assert proc.returncode == 0, (
        f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return str(proc.stdout + proc.stderr)


def _disk_usage(folder: Path) -> int:
    """Bytes on disk under ``folder``, as ``du`` counts them (symlinks not followed)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this working tree (its build hook builds the sidebar if it is not built yet)."""
    out = tmp_path_factory.mktemp("wheel")
    args: list[str | Path] = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out]
    if all(importlib.util.find_spec(m) for m in ("hatchling", "hatch_jupyter_builder")):
        args.append("--no-build-isolation")  # the dev extra has the build backend: no build env to make
    _run([*args, ROOT])
    (built,) = out.glob("evalhub-*.whl")
    return built


@pytest.fixture(scope="module")
def server_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A fresh venv with ``evalhub[server]`` from the wheel, and its size right after the install."""
    venv = tmp_path_factory.mktemp("venv-server")
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", f"evalhub[server] @ {wheel.as_uri()}"])
    yield venv, _disk_usage(venv)


def test_the_server_extra_alone_is_under_120_mb_and_holds_no_notebook_package(
    server_venv: tuple[Path, int],
) -> None:
    venv, size = server_venv
    assert size < MAX_SERVER_VENV_MB * 2**20, f"the server venv takes {size / 2**20:.1f} MB"
    check = textwrap.dedent(f"""
        import importlib.util, sys
        import evalhub, evalhub.protocol, evalhub_server.app, evalhub.tracking, evalhub.cli
        present = [m for m in {NOTEBOOK_MODULES!r} if importlib.util.find_spec(m) is not None]
        assert not present, present
        from evalhub.errors import MissingExtra
        try:
            evalhub.compare
        except MissingExtra as exc:
            print(exc)
        else:
            raise AssertionError("evalhub.compare without the notebook extra")
    """)
    out = _run([venv / "bin" / "python", "-c", check], cwd=venv)
    assert "pip install 'evalhub[notebook]'" in out


def test_evalhub_server_from_the_thin_venv_answers_and_stores_a_training_run(
    server_venv: tuple[Path, int], tmp_path: Path
) -> None:
    venv, _ = server_venv
    ready = tmp_path / "ready.json"
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(
        [venv / "bin" / "evalhub", "server", "--db", f"sqlite:///{tmp_path / 'evalhub.db'}",
         "--port", "0", "--ready-file", ready],
        stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    log.close()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "no ready file after 60 s"
            time.sleep(0.05)
        url = json.loads(ready.read_text())["url"]
        with urllib.request.urlopen(f"{url}/api/health", timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["status"] == "ok"
        # a training script with nothing but the client core (run.log, system metrics off)
        script = textwrap.dedent(f"""
            import evalhub
            hub = evalhub.connect({url!r}, project="thin")
            run = hub.init_run("train", config={{"lr": 0.1}}, system_metrics=False)
            for step in range(500):
                run.log({{"loss": 1.0 / (step + 1)}}, step=step)
            run.finish()
            print(run.id)
        """)
        run_id = int(_run([venv / "bin" / "python", "-c", script], timeout=120, cwd=tmp_path).split()[-1])
        req = urllib.request.Request(
            f"{url}/api/runs/{run_id}/series/keys", headers={"X-Evalhub-Project": "thin"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            keys = {k["key"]: k["count"] for k in json.loads(r.read())["keys"]}
        assert keys == {"loss": 500}
        # an OTLP/protobuf export as the SDK's exporter encodes it, read with no protobuf package here
        assert "protobuf" not in _run([venv / "bin" / "python", "-m", "pip", "list"], cwd=tmp_path)
        req = urllib.request.Request(
            f"{url}/api/otlp/v1/traces", data=_otlp_protobuf(), method="POST",
            headers={"X-Evalhub-Project": "thin", "Content-Type": "application/x-protobuf"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/x-protobuf"
        req = urllib.request.Request(f"{url}/api/runs?type=trace", headers={"X-Evalhub-Project": "thin"})
        with urllib.request.urlopen(req, timeout=10) as r:
            (trace,) = json.loads(r.read())["items"]
        req = urllib.request.Request(
            f"{url}/api/runs/{trace['id']}/samples", headers={"X-Evalhub-Project": "thin"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            (sample,) = json.loads(r.read())["items"]
        assert (trace["name"], sample["output"], sample["tokens_in"]) == ("thin-app", "4", 3)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_with_jupyterlab_the_sidebar_and_the_server_extension_are_enabled(
    server_venv: tuple[Path, int], tmp_path: Path
) -> None:
    venv, _ = server_venv
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "jupyterlab>=4.6,<4.7"])
    # only the venv's own Jupyter paths: no user config or data folder counts
    env = {"JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    labext = _run([venv / "bin" / "jupyter", "labextension", "list"], env=env, cwd=tmp_path)
    serverext = _run([venv / "bin" / "jupyter", "server", "extension", "list"], env=env, cwd=tmp_path)
    line = next((x for x in labext.splitlines() if "evalhub-jupyter" in x), "")
    assert "enabled" in line and "OK" in line and "(python, evalhub)" in line, labext
    assert (venv / "share/jupyter/labextensions/evalhub-jupyter/static/style.js").is_file()
    lines = [x for x in serverext.splitlines() if "evalhub_jupyter" in x]
    assert any("enabled" in x for x in lines) and any("OK" in x for x in lines), serverext


def test_the_sdist_carries_the_prebuilt_sidebar(wheel: Path, tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    pytest.importorskip("hatch_jupyter_builder")
    _run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", tmp_path], cwd=ROOT)
    (sdist,) = tmp_path.glob("evalhub-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    for target in ("package.json", "install.json", "static/style.js"):
        assert f"extension/evalhub_jupyter/labextension/{target}" in names
    assert not any(n.startswith("extension/node_modules/") for n in names)


def _otlp_protobuf() -> bytes:
    """One GenAI span, encoded by the OpenTelemetry SDK as its OTLP/HTTP exporter sends it."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "thin-app"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    with provider.get_tracer("thin").start_as_current_span("chat") as span:
        span.set_attribute("gen_ai.request.model", "m")
        span.set_attribute(
            "gen_ai.output.messages", '[{"role": "assistant", "parts": [{"type": "text", "content": "4"}]}]'
        )
        span.set_attribute("gen_ai.usage.input_tokens", 3)
    return bytes(encode_spans(kept.get_finished_spans()).SerializeToString())
