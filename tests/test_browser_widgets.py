"""The widgets in a real JupyterLab 4.6 in headless Chromium: a notebook of %evalhub magics over
data posted through the REST API (the real %%evalhub experiment is test_browser_experiment.py).
Screenshots are kept under test-artifacts/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lab import Lab, browser, cell_errors, kernel_idle, open_and_run_all, screenshot, write_notebook
from _widgetdata import arith_outcome, complete_run, create_experiment, finished_experiment

pytestmark = pytest.mark.browser

N = 45
STEPS = (100, 200, 300)
TIMEOUT = 180_000  # ms; the box is shared and slow


def _require_chromium() -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def notebook_page(_module_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """JupyterLab running a notebook of every widget over one project's data; yields the page."""
    _require_chromium()
    from evalhub.hub import connect

    hub = connect(_module_server.url, project=f"b{uuid.uuid4().hex[:8]}")
    done = finished_experiment(hub, n=N, steps=STEPS)
    live = create_experiment(hub, name="live", steps=(100, 200))
    runs = []
    for name, scale in (("lr-3e-4", 1.0), ("lr-1e-3", 2.0)):
        with hub.init_run(name, config={}) as run:
            for step in range(1, 101):
                run.log({"loss": scale * 3.0 / (1 + step / 10)}, step=step)
        runs.append(run.id)
    data = tmp_path_factory.mktemp("data") / "arith-add.jsonl"
    data.write_text("".join(f'{{"question": "what is {j} + {j}?", "answer": "{2 * j}"}}\n' for j in range(N)))
    hub.register_task(
        "arith-add", data=str(data), prompt="Question: {{question}}\nAnswer:", target="{{answer}}"
    )
    hub.register_benchmark("arith", tasks=["arith-add"])
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("evalhub-home")
    write_notebook(
        root / "widgets.ipynb",
        [
            f"%load_ext evalhub\n%config EvalhubMagics.url = {hub.url!r}\n%config EvalhubMagics.project = {hub.project!r}",
            f"%evalhub show {live['id']}",
            f"%evalhub compare {done['id']} --baseline step-100",
            f"%evalhub diff {done['id']} --limit 5",
            f"%evalhub curves {runs[0]} {runs[1]} --key loss",
            f"%evalhub curves --experiment {done['id']} --key exact_match",
            "%evalhub registry",
        ],
    )
    lab = Lab(
        root, env={"EVALHUB_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    ).start()
    try:
        with browser() as page:
            open_and_run_all(page, lab, "widgets.ipynb", TIMEOUT)
            kernel_idle(page, TIMEOUT)
            yield {"page": page, "hub": hub, "done": done, "live": live, "runs": runs}
    finally:
        lab.stop()
        hub.close()


def test_notebook_runs_without_errors(notebook_page: dict[str, Any]) -> None:
    page = notebook_page["page"]
    page.wait_for_selector(".evh-registry", timeout=TIMEOUT)
    assert cell_errors(page) == []
    screenshot(page, "browser-notebook")


def test_monitor_goes_live_to_all_completed(notebook_page: dict[str, Any]) -> None:
    page, hub, live = notebook_page["page"], notebook_page["hub"], notebook_page["live"]
    monitor = page.locator(".evh-monitor")
    monitor.wait_for(timeout=TIMEOUT)
    assert monitor.locator("tr[data-run-id]").count() == 2
    for i, run in enumerate(live["runs"]):
        complete_run(hub, run, i, n=20)
    page.wait_for_selector('.evh-monitor[data-done="true"]', timeout=TIMEOUT)
    statuses = monitor.locator("tr[data-run-id]").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses == ["completed", "completed"]
    assert "20/20" in monitor.inner_text()
    monitor.scroll_into_view_if_needed()
    screenshot(page, "browser-monitor", monitor)


def test_comparison_table_shows_every_run_with_baseline_deltas_and_best(
    notebook_page: dict[str, Any],
) -> None:
    page = notebook_page["page"]
    table = page.locator(".evh-compare")
    table.wait_for(timeout=TIMEOUT)
    rows = table.locator("tr[data-run-id]")
    assert rows.count() == len(STEPS)
    assert table.locator("tr.evh-baseline").get_attribute("data-label") == "step-100"
    assert table.locator(".evh-delta").count() == 2 * 2  # two other runs x two metrics
    # exact_match has per-sample scores: its deltas carry the paired 95% interval
    assert table.locator('td[data-metric="exact_match"] .evh-ci').count() == 2
    assert "Holm p =" in (table.locator('td[data-metric="exact_match"] .evh-delta').first.get_attribute("title") or "")
    assert table.locator("td.evh-best").count() >= 2
    table.locator('th[data-metric="latency_p50_ms"]').click()  # sort by latency, largest first
    page.wait_for_function(
        "() => [...document.querySelectorAll('.evh-compare tr[data-run-id]')].map(r => r.dataset.label).join() === 'step-300,step-200,step-100'",
        timeout=30_000,
    )
    table.locator("select.evh-baseline").select_option("step-300")
    page.wait_for_selector('.evh-compare[data-baseline="step-300"]', timeout=30_000)
    page.wait_for_selector('.evh-compare tr.evh-baseline[data-label="step-300"]', timeout=60_000)  # recomputed
    assert table.locator('td[data-metric="exact_match"] .evh-ci').count() == 2
    table.scroll_into_view_if_needed()
    screenshot(page, "browser-compare", table)


def test_output_diff_pages_and_filters_from_the_server(notebook_page: dict[str, Any]) -> None:
    page = notebook_page["page"]
    diff = page.locator(".evh-diff")
    diff.wait_for(timeout=TIMEOUT)
    assert diff.locator(".evh-sample").count() == 5
    assert diff.get_attribute("data-total") == str(N)
    assert diff.locator("ins.evh-add").count() > 0 and diff.locator("del.evh-del").count() > 0
    diff.locator(".evh-toolbar .evh-next").first.click()
    page.wait_for_selector('.evh-diff[data-offset="5"][data-loading="false"]', timeout=30_000)
    assert diff.locator(".evh-sample").first.get_attribute("data-key") == "doc-5"
    diff.locator('button[data-filter="disagree"]').click()
    disagree = sum(1 for j in range(N) if len({arith_outcome(c, j)[0] for c in range(3)}) > 1)
    page.wait_for_selector(
        f'.evh-diff[data-filter="disagree"][data-total="{disagree}"][data-offset="0"]', timeout=30_000
    )
    diff.locator("input.evh-search").fill("what is 22 + 22")
    page.wait_for_selector('.evh-diff[data-total="1"]', timeout=30_000)
    assert diff.locator(".evh-sample").first.get_attribute("data-key") == "doc-22"
    diff.locator("input.evh-search").fill("")
    page.wait_for_selector(f'.evh-diff[data-total="{disagree}"]', timeout=30_000)
    diff.scroll_into_view_if_needed()
    screenshot(page, "browser-diff", diff)


def test_curves_draw_their_marks_offline(notebook_page: dict[str, Any]) -> None:
    page = notebook_page["page"]
    page.wait_for_selector(".vega-embed svg .mark-line path", timeout=TIMEOUT)
    charts = page.locator(".vega-embed")
    assert charts.count() == 2
    for i in range(2):
        paths = charts.nth(i).locator(".mark-line path")
        assert paths.count() >= 1
        assert len(paths.first.get_attribute("d") or "") > 20  # a drawn line, not an empty mark
    charts.nth(0).scroll_into_view_if_needed()
    screenshot(page, "browser-curves-loss", charts.nth(0))
    charts.nth(1).scroll_into_view_if_needed()
    screenshot(page, "browser-curves-progress", charts.nth(1))


def test_registry_browser_lists_models_and_tasks(notebook_page: dict[str, Any]) -> None:
    page = notebook_page["page"]
    reg = page.locator(".evh-registry")
    reg.wait_for(timeout=TIMEOUT)
    model = reg.locator('details[data-model="tiny-gpt"]')
    assert model.count() == 1
    assert model.locator("tbody tr").count() == len(STEPS)
    reg.locator('button[data-tab="tasks"]').click()
    assert "Benchmarks" in reg.inner_text()
    reg.scroll_into_view_if_needed()
    screenshot(page, "browser-registry", reg)
