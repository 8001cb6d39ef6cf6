"""The ImageGrid from Python against a real server: pages of prompts x runs with thumbnails loaded for
the page, the baseline column first, filters on the server, ordering by a score, a click's full image."""

from __future__ import annotations

from typing import Any

import pytest
from _imagedata import image_experiment, png

import evalhub
from evalhub.errors import EvalhubError


@pytest.fixture
def exp(hub: Any) -> dict[str, Any]:
    return image_experiment(hub, n=30)


def test_a_page_has_each_prompts_thumbnails_and_scores_with_the_baseline_first(
    hub: Any, exp: dict[str, Any]
) -> None:
    grid = evalhub.images(exp["id"], hub=hub, baseline="step-300", limit=12)
    assert [r["label"] for r in grid.runs] == ["step-300", "step-100"] and grid.runs[0]["baseline"]
    page = grid.page
    assert page["total"] == 30 and len(page["items"]) == 12
    cell = page["items"][0]["cells"][0]
    assert cell["thumb"].startswith("data:image/png;base64,") and cell["scores"]["correct"] in (0.0, 1.0)
    grid.next_page()
    assert grid.page["offset"] == 12 and grid.page["items"][0]["sample_key"] == "p012"
    assert sorted(grid.orders) == ["clip_score", "correct"]


def test_filters_and_ordering_by_a_score(hub: Any, exp: dict[str, Any]) -> None:
    grid = evalhub.images(exp["id"], hub=hub, limit=50)
    grid.set_filter("mixed")  # the two runs disagree on correctness
    mixed = {i["sample_key"] for i in grid.page["items"]}
    want = {f"p{j:03d}" for j in range(30) if bool(j % 3) != bool((j + 1) % 3)}
    assert mixed == want and grid.page["total"] == len(want)
    grid.set_order("clip_score")
    keys = [i["sample_key"] for i in grid.page["items"]]
    lowest = [min((j * 7) % 50, (j * 7 + 3) % 50) for j in range(30)]
    assert keys == [f"p{j:03d}" for j in sorted(range(30), key=lambda j: (lowest[j], f"p{j:03d}"))]
    with pytest.raises(EvalhubError, match="unknown filter"):
        grid.set_filter("blurry")


def test_a_click_opens_the_full_image_with_its_settings(hub: Any, exp: dict[str, Any]) -> None:
    grid = evalhub.images(exp["id"], hub=hub, limit=5)
    run_id = grid.runs[0]["run_id"]
    opened = grid.show_image(run_id, "p002")
    assert opened["seed"] == 1002 and opened["settings"] == {"steps": 15}
    import base64

    assert base64.b64decode(opened["src"].split(",", 1)[1]) == png((80, 0, 200))
    assert "a shape number 0" in grid._text()
