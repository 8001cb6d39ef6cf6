"""The ImageGrid in JupyterLab in headless Chromium: thumbnails load, pages turn, the baseline column
comes first, a filter and an order apply, a click opens the full image. Screenshots in test-artifacts/."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from _imagedata import image_experiment
from _lab import Lab, browser, cell_errors, kernel_idle, open_and_run_all, screenshot, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = 180_000


def test_image_grid_pages_filters_and_opens_an_image(server_url: str, tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    from evalhub.hub import connect

    hub = connect(server_url, project=f"i{uuid.uuid4().hex[:8]}")
    exp = image_experiment(hub, n=30)
    root = tmp_path / "lab"
    root.mkdir()
    write_notebook(
        root / "images.ipynb",
        [f"import evalhub\nhub = evalhub.connect({hub.url!r}, project={hub.project!r})\n"
         f"evalhub.images({exp['id']}, hub=hub, baseline='step-300', limit=10)"],
    )  # fmt: skip
    lab = Lab(root, env={"EVALHUB_HOME": str(tmp_path / "home")}).start()
    try:
        with browser() as page:
            open_and_run_all(page, lab, "images.ipynb", TIMEOUT)
            kernel_idle(page, TIMEOUT)
            grid = page.locator(".evh-images")
            grid.wait_for(timeout=TIMEOUT)
            assert cell_errors(page) == []
            page.wait_for_function(
                "() => [...document.querySelectorAll('.evh-images img.evh-thumb')].length === 20 && "
                "[...document.querySelectorAll('.evh-images img.evh-thumb')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=60_000,
            )
            headers = grid.locator("thead th").all_inner_texts()
            assert headers == ["prompt", "step-300 (baseline)", "step-100"]
            screenshot(page, "browser-images", grid)
            grid.locator(".evh-next").click()
            page.wait_for_selector('.evh-images[data-offset="10"]', timeout=30_000)
            assert grid.locator("tr[data-key]").first.get_attribute("data-key") == "p010"
            grid.locator("select.evh-filter").select_option("mixed")
            page.wait_for_selector('.evh-images[data-offset="0"]', timeout=30_000)
            page.wait_for_function(
                "() => document.querySelector('.evh-images').dataset.total === '20'", timeout=30_000
            )
            grid.locator("img.evh-thumb").first.click()
            page.wait_for_selector(".evh-images .evh-opened img.evh-full", timeout=30_000)
            assert "seed" in grid.locator(".evh-opened").inner_text()
            screenshot(page, "browser-images-opened", grid)
    finally:
        lab.stop()
        hub.close()
