"""A real ``%%evalhub experiment`` on the tiny model (local Ray, lm-eval) in JupyterLab 4.6 in headless
Chromium. Its own module: Playwright's sync API cannot open a second session while
test_browser_widgets.py's module-scoped page is still open. Screenshots are kept under test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _lab import Lab, browser, cell_errors, kernel_idle, open_and_run_all, screenshot, write_notebook

pytestmark = pytest.mark.browser

TIMEOUT = 180_000  # ms; the box is shared and slow


def _require_chromium() -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")


@pytest.mark.ray
@pytest.mark.slow
def test_experiment_cell_on_the_tiny_model_in_jupyterlab(hub: Any, tmp_path: Path) -> None:
    """``%%evalhub experiment`` on the tiny model (local Ray, lm-eval): the monitor goes live to
    all-completed, the table shows every run, the diff pages, the charts draw, and the kernel still
    answers 95 s after the experiment ended."""
    _require_chromium()
    from evalhub import tiny

    built = tiny.build(tmp_path / "tiny", hub=hub, steps=300, save_every=100)
    tiny.write_tasks(tmp_path / "tiny", n=40)
    tiny.register_tasks(hub, tmp_path / "tiny")
    root = tmp_path / "lab"
    root.mkdir()
    write_notebook(
        root / "experiment.ipynb",
        [
            f"import evalhub\n%load_ext evalhub\n%config EvalhubMagics.url = {hub.url!r}\n%config EvalhubMagics.project = {hub.project!r}",
            "%%evalhub experiment --no-wait\nname: tiny-progress\nmodels:\n  - model: tiny-gpt\n    checkpoints: all\n"
            "tasks: [arith-add]\nconfig:\n  limit: 20\n  batch_size: 4\n",
            "exp = _\nexp.wait(timeout=1200)\nexp.status()",
            "evalhub.compare(exp, baseline='step-100')",
            "evalhub.diff(exp, limit=5)",
            "evalhub.curves(exp, 'exact_match')",
            f"evalhub.curves({built.run_id}, 'loss', hub=exp.hub)",
            # Ray gives a process 60 s to find a lost cluster again: the kernel must outlive that
            "import time\ntime.sleep(95)\nprint('kernel alive', 6 * 7)",
        ],
    )
    env = {"EVALHUB_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.update(EVALHUB_RAY_START_NICE="-10", EVALHUB_RAY_DASHBOARD="0")  # a busy box must not time Ray out
    lab = Lab(root, env=env).start()
    try:
        with browser() as page:
            open_and_run_all(page, lab, "experiment.ipynb", TIMEOUT)
            monitor = page.locator(".evh-monitor")
            monitor.wait_for(timeout=TIMEOUT)
            assert monitor.locator("tr[data-run-id]").count() == 3
            page.wait_for_selector('.evh-monitor[data-done="true"]', timeout=1_200_000)
            statuses = monitor.locator("tr[data-run-id]").evaluate_all(
                "rows => rows.map(r => r.dataset.status)"
            )
            assert statuses == ["completed"] * 3, monitor.inner_text()
            screenshot(page, "browser-tiny-monitor", monitor)
            kernel_idle(page, 1_200_000)
            assert cell_errors(page) == []
            table = page.locator(".evh-compare")
            assert table.locator("tr[data-run-id]").count() == 3
            assert table.locator('td[data-metric="exact_match"]').count() == 3
            screenshot(page, "browser-tiny-compare", table)
            diff = page.locator(".evh-diff")
            assert diff.locator(".evh-sample").count() == 5 and diff.get_attribute("data-total") == "20"
            diff.locator(".evh-toolbar .evh-next").first.click()
            page.wait_for_selector('.evh-diff[data-offset="5"][data-loading="false"]', timeout=60_000)
            screenshot(page, "browser-tiny-diff", diff)
            page.wait_for_function(
                "() => document.querySelectorAll('.vega-embed svg .mark-line path').length >= 2",
                timeout=TIMEOUT,
            )
            charts = page.locator(".vega-embed")
            for i in range(charts.count()):
                charts.nth(i).scroll_into_view_if_needed()
                screenshot(page, f"browser-tiny-curves-{i}", charts.nth(i))
            screenshot(page, "browser-tiny-notebook")
            # the kernel answered 95 s after its experiment ended (it used to die within a minute)
            page.wait_for_selector("text=kernel alive 42", timeout=TIMEOUT)
            assert cell_errors(page) == []
    finally:
        lab.stop()
