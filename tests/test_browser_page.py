"""The experiment page (``%evalhub page``) in a real JupyterLab in headless Chromium: its header and
tabs render, and the curves tab draws the training loss beside the eval metric. Screenshots go under test-artifacts/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lab import Lab, browser, cell_errors, kernel_idle, open_and_run_all, screenshot, write_notebook
from test_page import _trained_experiment

pytestmark = pytest.mark.browser

TIMEOUT = 180_000  # ms; the box is shared and slow


@pytest.fixture(scope="module")
def lab_page(_module_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    from evalhub.hub import connect

    hub = connect(_module_server.url, project=f"p{uuid.uuid4().hex[:8]}")
    exp = _trained_experiment(hub)
    root = tmp_path_factory.mktemp("lab")
    write_notebook(
        root / "page.ipynb",
        [
            f"%load_ext evalhub\n%config EvalhubMagics.url = {hub.url!r}\n%config EvalhubMagics.project = {hub.project!r}",
            f"%evalhub page {exp['id']} --baseline step-100 --by answer_length",
        ],
    )
    lab = Lab(root, env={"EVALHUB_HOME": str(tmp_path_factory.mktemp("home"))}).start()
    try:
        with browser() as page:
            open_and_run_all(page, lab, "page.ipynb", TIMEOUT)
            kernel_idle(page, TIMEOUT)
            yield {"page": page, "exp": exp}
    finally:
        lab.stop()
        hub.close()


def test_the_page_renders_its_header_and_tabs_and_draws_the_curves(lab_page: dict[str, Any]) -> None:
    page = lab_page["page"]
    root = page.locator(".evh-page")
    root.wait_for(timeout=TIMEOUT)
    assert cell_errors(page) == []
    assert f"experiment {lab_page['exp']['id']}" in root.locator(".evh-page-head").inner_text()
    tabs = root.locator(".lm-TabBar-tab")
    assert [t.strip() for t in tabs.all_inner_texts()] == [
        "Runs",
        "Curves",
        "Diff",
        "Slices",
        "Judges",
        "Annotation",
    ]
    root.locator(".evh-compare").wait_for(timeout=TIMEOUT)  # the first tab: the comparison table
    screenshot(page, "browser-page-runs", root)
    tabs.nth(1).click()
    root.locator(".vega-embed svg .mark-line path").first.wait_for(timeout=TIMEOUT)
    assert root.locator(".vega-embed svg .mark-line path").count() >= 2  # the loss and the metric
    screenshot(page, "browser-page-curves", root)
    tabs.nth(3).click()
    assert "step-300" in root.inner_text()
    screenshot(page, "browser-page-slices", root)
