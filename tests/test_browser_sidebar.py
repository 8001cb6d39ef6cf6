"""The EvalHub sidebar in real JupyterLab, driven in real headless Chromium (Playwright).

A real tracking server (conftest), a real ``jupyter lab`` subprocess with the built extension and
the evalhub_jupyter server extension, and a real kernel that runs the inserted magic. Data comes
in through the tracking server's REST API while the page is open. Screenshots are kept under
test-artifacts/browser_sidebar/ (look at them to check the layout).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _lab import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "extension" / "evalhub_jupyter" / "labextension"
ARTIFACTS = ROOT / "test-artifacts" / "browser_sidebar"
CHROMIUM = os.environ.get("EVALHUB_TEST_CHROMIUM", "/usr/bin/chromium")
RAY_DASHBOARD = "http://127.0.0.1:8265"
TIMEOUT_MS = 60_000

if not (BUILT / "package.json").exists():
    pytest.skip(
        f"the sidebar extension is not built ({BUILT} is missing): run extension/build.sh",
        allow_module_level=True,
    )
# Only a missing build skips (CI builds it); a missing Chromium or Playwright is a failure.
from playwright import sync_api  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rest:
    """The tracking server's REST API in this module's project."""

    url: str
    project: str
    server: Any  # conftest's ServerProcess: stop() / start()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(f"{self.url}/api{path}", json=body, headers={"X-Evalhub-Project": self.project})
        r.raise_for_status()
        return r.json()

    def experiment(self, name: str, runs: int = 2) -> dict[str, Any]:
        """An experiment with ``runs`` queued runs, as the orchestrator would create it."""
        return dict(
            self.post(
                "/experiments",
                {
                    "name": name,
                    "spec": {"name": name},
                    "config": {},
                    "runs": [{"name": f"{name}-run{i}", "type": "offline_eval"} for i in range(runs)],
                },
            )
        )

    def events(self, run_id: int, *events: dict[str, Any]) -> Any:
        """Events as a worker posts them (one stream; ``seq`` numbered by the caller)."""
        answer = self.post(f"/runs/{run_id}/events", {"stream": "attempt-1", "events": list(events)})
        assert not answer["rejected"], answer
        return answer


@dataclass
class Lab:
    url: str
    token: str
    root: Path

    def link(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}/{path}{sep}token={self.token}"


@pytest.fixture(scope="module")
def rest(_module_server: Any) -> Rest:
    if _module_server.proc is None or _module_server.proc.poll() is not None:
        _module_server.start()
    return Rest(_module_server.url, f"sb{uuid.uuid4().hex[:10]}", _module_server)


@pytest.fixture(scope="module")
def lab(rest: Rest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` with the built extension and the proxy, isolated from the user's Jupyter dirs."""
    base = tmp_path_factory.mktemp("lab")
    labexts = base / "labextensions"
    labexts.mkdir()
    (labexts / "evalhub-jupyter").symlink_to(BUILT, target_is_directory=True)
    config_dir = base / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {"jpserver_extensions": {"evalhub_jupyter": True}},
                "LabApp": {
                    "extra_labextensions_path": [str(labexts)],
                    "news_url": None,
                    "extension_manager": "readonly",
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                },
            }
        )
    )
    root = base / "root"
    root.mkdir()
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "first", "metadata": {}, "outputs": [],
                   "source": "x = 1"}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    (root / "sidebar.ipynb").write_text(json.dumps(notebook))
    token = uuid.uuid4().hex
    port = _free_port()
    env = {
        **os.environ,
        "EVALHUB_URL": rest.url,
        "EVALHUB_PROJECT": rest.project,
        "EVALHUB_RAY_DASHBOARD": RAY_DASHBOARD,
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = base / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", "lab", "--no-browser",
                "--allow-root", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            ],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab not ready after 120s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        yield Lab(url, token, root)
    finally:
        proc.send_signal(signal.SIGTERM)  # jupyter shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: scripts/setup --test installs it"
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"))
    context.close()
    assert not [e for e in errors if "evalhub" in e.lower()], errors


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _open_sidebar(page: Any, lab: Lab, path: str | None = "lab?reset") -> Any:
    """Open JupyterLab at ``path`` (None: stay on the page), show the EvalHub tab, wait until connected."""
    if path is not None:
        page.goto(lab.link(path))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="evalhub-sidebar"]')
    tab.wait_for()
    sidebar = page.locator("#evalhub-sidebar")
    if not sidebar.is_visible():
        tab.click()
    sidebar.wait_for(state="visible")
    sync_api.expect(sidebar.locator('.jp-EvalhubSidebar-status[data-state="ok"]')).to_be_visible()
    return sidebar


def test_sidebar_connects_and_links_the_ray_dashboard(page: Any, lab: Lab, rest: Rest) -> None:
    sidebar = _open_sidebar(page, lab)
    sync_api.expect(sidebar.locator(".jp-EvalhubSidebar-statusText")).to_contain_text("Connected to")
    link = sidebar.locator("a.jp-EvalhubSidebar-ray")
    sync_api.expect(link).to_be_visible()
    assert link.get_attribute("href") == RAY_DASHBOARD
    assert link.get_attribute("target") == "_blank"
    _shot(page, "connected")


def test_sidebar_lists_an_experiment_created_through_the_api(page: Any, lab: Lab, rest: Rest) -> None:
    sidebar = _open_sidebar(page, lab)
    name = f"listed-{uuid.uuid4().hex[:6]}"
    exp = rest.experiment(name, runs=3)  # created while the page is open: the next poll shows it
    item = sidebar.locator(f'.jp-EvalhubSidebar-experiment[data-experiment-id="{exp["id"]}"]')
    sync_api.expect(item).to_contain_text(name)
    sync_api.expect(item).to_contain_text("3 queued")
    sync_api.expect(item.locator(".jp-EvalhubSidebar-badge")).to_have_text("queued")
    sync_api.expect(item.locator(".jp-EvalhubSidebar-progressText")).to_have_text("not started")
    # Newest first.
    first = sidebar.locator(".jp-EvalhubSidebar-experiment").first
    assert first.get_attribute("data-experiment-id") == str(exp["id"])
    _shot(page, "experiment-listed")


def test_running_run_progress_moves_while_the_page_is_open(page: Any, lab: Lab, rest: Rest) -> None:
    exp = rest.experiment(f"live-{uuid.uuid4().hex[:6]}", runs=2)
    run_id = exp["runs"][0]["id"]
    rest.events(
        run_id,
        {"seq": 1, "type": "status", "status": "running", "worker": {"node": "test", "pid": 1, "gpu": None}},
        {"seq": 2, "type": "progress", "done": 5, "total": 50},
    )
    sidebar = _open_sidebar(page, lab)
    run = sidebar.locator(f'.jp-EvalhubSidebar-run[data-run-id="{run_id}"]')
    sync_api.expect(run.locator(".jp-EvalhubSidebar-progressText")).to_have_text("5 / 50 (10%)")
    experiment = sidebar.locator(f'.jp-EvalhubSidebar-experiment[data-experiment-id="{exp["id"]}"]')
    sync_api.expect(experiment).to_contain_text("1 running · 1 queued")
    _shot(page, "progress-10")

    rest.events(run_id, {"seq": 3, "type": "progress", "done": 30, "total": 50})
    sync_api.expect(run.locator(".jp-EvalhubSidebar-progressText")).to_have_text("30 / 50 (60%)")
    sync_api.expect(run.locator(".jp-EvalhubSidebar-barFill")).to_have_attribute(
        "style", re.compile(r"width: 60")
    )
    sync_api.expect(run.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "30")
    _shot(page, "progress-60")

    rest.events(
        run_id,
        {"seq": 4, "type": "progress", "done": 50, "total": 50},
        {"seq": 5, "type": "status", "status": "completed"},
    )
    sync_api.expect(run).to_have_count(0)  # no longer active
    sync_api.expect(experiment).to_contain_text("1 queued · 1 completed")
    _shot(page, "progress-done")


def test_click_inserts_and_runs_the_compare_cell_in_the_open_notebook(
    page: Any, lab: Lab, rest: Rest
) -> None:
    exp = rest.experiment(f"clicked-{uuid.uuid4().hex[:6]}", runs=2)
    page.goto(lab.link("lab/tree/sidebar.ipynb?reset"))
    notebook = page.locator(".jp-NotebookPanel")
    notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
    cells = notebook.locator(".jp-Notebook .jp-Cell")
    sync_api.expect(cells).to_have_count(1)
    cells.first.locator(".jp-InputArea-editor").click()  # the first cell is the active one

    sidebar = _open_sidebar(page, lab, None)
    sidebar.locator(f'.jp-EvalhubSidebar-experiment[data-experiment-id="{exp["id"]}"]').click()

    sync_api.expect(cells).to_have_count(2)
    inserted = cells.nth(1)  # directly below the active cell
    sync_api.expect(inserted.locator(".cm-content")).to_have_text(f"%evalhub compare {exp['id']}")
    # It ran: an execution count in the prompt, and the magic's table names the runs.
    sync_api.expect(inserted.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=120_000)
    output = inserted.locator(".jp-OutputArea")
    sync_api.expect(output).to_contain_text(exp["runs"][0]["name"], timeout=120_000)
    assert "Traceback" not in output.inner_text()
    assert "UsageError" not in output.inner_text()
    _shot(page, "compare-cell")


def test_the_page_button_inserts_and_runs_the_experiment_page(page: Any, lab: Lab, rest: Rest) -> None:
    exp = rest.experiment(f"paged-{uuid.uuid4().hex[:6]}", runs=2)
    page.goto(lab.link("lab/tree/sidebar.ipynb?reset"))
    notebook = page.locator(".jp-NotebookPanel")
    notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
    cells = notebook.locator(".jp-Notebook .jp-Cell")
    sync_api.expect(cells).to_have_count(1)
    cells.first.locator(".jp-InputArea-editor").click()
    sidebar = _open_sidebar(page, lab, None)
    item = sidebar.locator(f'.jp-EvalhubSidebar-experiment[data-experiment-id="{exp["id"]}"]')
    item.locator(".jp-EvalhubSidebar-page").click()
    sync_api.expect(cells).to_have_count(2)  # one cell: the page's, not also the comparison's
    inserted = cells.nth(1)
    sync_api.expect(inserted.locator(".cm-content")).to_have_text(f"%evalhub page {exp['id']}")
    widget = inserted.locator(".evh-page")
    head = widget.locator(".evh-page-head")
    sync_api.expect(head).to_contain_text(f"experiment {exp['id']}", timeout=120_000)
    sync_api.expect(head).to_contain_text("2 queued")
    sync_api.expect(widget.locator(".evh-compare")).to_be_visible()  # its first tab: the comparison
    assert "Traceback" not in inserted.locator(".jp-OutputArea").inner_text()
    _shot(page, "page-cell")


def test_click_without_a_notebook_opens_the_comparison_in_the_main_area(
    page: Any, lab: Lab, rest: Rest
) -> None:
    exp = rest.experiment(f"panel-{uuid.uuid4().hex[:6]}", runs=2)
    rest.events(
        exp["runs"][1]["id"],
        {"seq": 1, "type": "status", "status": "running", "worker": {"node": "test", "pid": 1, "gpu": None}},
        {"seq": 2, "type": "metrics", "values": {"exact_match": 0.25}},
        {"seq": 3, "type": "status", "status": "completed"},
    )
    sidebar = _open_sidebar(page, lab)
    sidebar.locator(f'.jp-EvalhubSidebar-experiment[data-experiment-id="{exp["id"]}"]').click()
    view = page.locator(f"#evalhub-compare-{exp['id']}")
    sync_api.expect(view.locator("h2")).to_have_text(f"{exp['name']} (#{exp['id']})")
    rows = view.locator("tbody tr")
    sync_api.expect(rows).to_have_count(2)
    sync_api.expect(view.locator("thead")).to_contain_text("exact_match")
    done = view.locator(f'tbody tr[data-run-id="{exp["runs"][1]["id"]}"]')
    sync_api.expect(done).to_contain_text("0.2500")
    _shot(page, "compare-panel")


def test_settings_schema_offers_the_refresh_interval(lab: Lab) -> None:
    r = httpx.get(f"{lab.url}/lab/api/settings/evalhub-jupyter:plugin", params={"token": lab.token})
    assert r.status_code == 200
    schema = r.json()["schema"]
    assert schema["properties"]["refreshInterval"]["default"] == 2
    assert r.json()["settings"] == {}  # nothing overridden: the defaults apply


def test_refresh_interval_setting_reaches_the_sidebar(page: Any, lab: Lab) -> None:
    url = f"{lab.url}/lab/api/settings/evalhub-jupyter:plugin"
    sidebar = _open_sidebar(page, lab)
    sync_api.expect(sidebar).to_have_attribute("data-refresh-interval", "2")
    # JupyterLab's settings API, which the Settings Editor writes through.
    headers = {"Authorization": f"token {lab.token}"}
    put = httpx.put(url, json={"raw": json.dumps({"refreshInterval": 7.5})}, headers=headers)
    assert put.status_code == 204, put.text
    try:
        sidebar = _open_sidebar(page, lab)
        sync_api.expect(sidebar).to_have_attribute("data-refresh-interval", "7.5")
    finally:
        httpx.put(url, json={"raw": "{}"}, headers=headers).raise_for_status()


def test_a_stopped_server_shows_as_a_reason_and_the_sidebar_recovers(page: Any, lab: Lab, rest: Rest) -> None:
    sidebar = _open_sidebar(page, lab)
    status = sidebar.locator(".jp-EvalhubSidebar-status")
    rest.server.stop()
    try:
        sync_api.expect(status).to_have_attribute("data-state", "error")
        sync_api.expect(status).to_contain_text(f"tracking server at {rest.url}")
        sync_api.expect(status).to_contain_text("did not answer")
        sync_api.expect(sidebar).to_have_class(re.compile(r"\bjp-mod-stale\b"))  # last lists greyed out
        _shot(page, "server-down")
    finally:
        rest.server.start()  # same port and database
    sync_api.expect(status).to_have_attribute("data-state", "ok")
    sync_api.expect(sidebar).not_to_have_class(re.compile(r"\bjp-mod-stale\b"))
    sync_api.expect(sidebar.locator(".jp-EvalhubSidebar-experiment").first).to_be_visible()


def test_an_annotation_queue_is_listed_with_progress_and_a_click_opens_the_annotator(
    page: Any, lab: Lab, rest: Rest
) -> None:
    from _widgetdata import finished_experiment

    from evalhub.hub import connect

    with connect(rest.url, project=rest.project) as hub:
        exp = finished_experiment(hub, n=3, steps=(100,))
        queue = hub.annotation_queue(exp["id"], "tone", {"kind": "choice", "options": ["flat", "warm"]})
        queue.person = "alice"
        queue.label(queue.items()[0], "warm")
    page.goto(lab.link("lab/tree/sidebar.ipynb?reset"))
    notebook = page.locator(".jp-NotebookPanel")
    notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
    cells = notebook.locator(".jp-Notebook .jp-Cell")
    cells.first.locator(".jp-InputArea-editor").click()
    sidebar = _open_sidebar(page, lab, None)
    item = sidebar.locator(f'.jp-EvalhubSidebar-queue[data-queue-id="{queue.id}"]')
    sync_api.expect(item).to_contain_text("1/3 labelled · alice 1")
    sync_api.expect(item).to_contain_text("choice")
    _shot(page, "queue-listed")
    item.click()
    inserted = cells.nth(1)
    sync_api.expect(inserted.locator(".cm-content")).to_contain_text(f"evalhub.annotate({queue.id})")
    widget = inserted.locator(".evh-annotate")
    sync_api.expect(widget).to_contain_text("item 1 of 3", timeout=120_000)
    sync_api.expect(widget).to_contain_text("1 · flat")
    _shot(page, "queue-annotator")
