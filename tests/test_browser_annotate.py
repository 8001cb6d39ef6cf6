"""Annotation in JupyterLab in headless Chromium: alice and bob, each with a token of their own, label
one queue from the keyboard in two Annotator widgets (number keys, j/k, skip, undo); each widget's
progress and the kappa between them update, and match the labels on the server. Screenshots in
test-artifacts/."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _lab import Lab, browser, cell_errors, kernel_idle, open_and_run_all, screenshot, write_notebook
from _widgetdata import finished_experiment

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = 180_000
ADMIN = "admin-secret"


def test_two_people_label_a_queue_and_progress_and_kappa_update(
    server_for: Callable[..., Any], tmp_path: Path
) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from evalhub.hub import connect

    server = server_for(auth="token", admin_token=ADMIN)
    project = f"b{uuid.uuid4().hex[:8]}"
    admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"})
    admin.post("/api/projects", json={"name": project})
    main = admin.post(f"/api/projects/{project}/tokens", json={"name": "main"}).json()["token"]
    tokens = {
        p: admin.post(f"/api/projects/{project}/people", json={"name": p}).json()["token"]
        for p in ("alice", "bob")
    }
    hub = connect(server.url, token=main, project=project)
    exp = finished_experiment(hub, n=4, steps=(100, 200))
    queue = hub.annotation_queue(exp["id"], "quality", {"kind": "scale", "min": 1, "max": 5,
                                                         "question": "How good is the answer?"})  # fmt: skip
    root = tmp_path / "lab"
    root.mkdir()
    cells = [
        f"import evalhub\n{p} = evalhub.annotate({queue.id}, hub=evalhub.connect({server.url!r}, token={tokens[p]!r}, "
        f"project={project!r}))\n{p}"
        for p in ("alice", "bob")
    ]
    write_notebook(root / "annotate.ipynb", cells)
    lab = Lab(root, env={"EVALHUB_HOME": str(tmp_path / "home")}).start()
    try:
        with browser() as page:
            open_and_run_all(page, lab, "annotate.ipynb", TIMEOUT)
            kernel_idle(page, TIMEOUT)
            page.wait_for_function(
                "() => document.querySelectorAll('.evh-annotate').length === 2", timeout=TIMEOUT
            )
            assert cell_errors(page) == []
            alice, bob = page.locator(".evh-annotate").nth(0), page.locator(".evh-annotate").nth(1)
            assert "item 1 of 8" in alice.inner_text() and "How good is the answer?" in alice.inner_text()
            screenshot(page, "browser-annotate-start", alice)

            def wait(widget: Any, attr: str, value: str) -> None:
                try:
                    widget.locator(f"xpath=self::*[@data-{attr}='{value}']").wait_for(timeout=30_000)
                except Exception:
                    screenshot(page, "browser-annotate-failed")
                    print(hub.queue(queue.id).labels(), hub.queue(queue.id).progress())
                    raise

            # alice: 5, 4, skip one, 2, back (k) to the skipped one and 1, then j past the end
            for key, mine in (("5", "1"), ("4", "2")):
                alice.press(key)
                wait(alice, "mine", mine)
            alice.press("s")
            wait(alice, "position", "3")
            alice.press("2")
            wait(alice, "mine", "3")
            alice.press("k")
            alice.press("k")
            wait(alice, "position", "2")
            alice.press("1")
            wait(alice, "mine", "4")
            assert "alice: 4/8" in alice.inner_text()
            # bob: 5, 3, 1 (undone with u, then 2), 2
            for key, mine in (("5", "1"), ("3", "2"), ("1", "3")):
                bob.press(key)
                wait(bob, "mine", mine)
            bob.press("u")
            wait(bob, "mine", "2")
            wait(bob, "position", "2")
            bob.press("2")
            wait(bob, "mine", "3")
            bob.press("2")
            wait(bob, "mine", "4")
            assert "bob: 4/8" in bob.inner_text()

            # what the server holds, and kappa computed from it directly
            labels = hub.queue(queue.id).labels()
            by = {
                p: dict(zip(g["item_id"], g["value"], strict=True)) for (p,), g in labels.group_by("person")
            }
            assert sorted(by["alice"].values()) == [1.0, 2.0, 4.0, 5.0] and sorted(by["bob"].values()) == [
                2.0,
                2.0,
                3.0,
                5.0,
            ]
            both = sorted(set(by["alice"]) & set(by["bob"]))
            want = sklearn_metrics.cohen_kappa_score([by["alice"][i] for i in both], [by["bob"][i] for i in both],
                                                     weights="quadratic", labels=[1.0, 2.0, 3.0, 4.0, 5.0])  # fmt: skip
            for widget in (alice, bob):  # each widget refreshes and shows the other's labels and kappa
                pair = widget.locator(".evh-kappa-pair[data-pair='alice-bob']")
                try:  # the widgets refresh every 3 s: the other person's last label shows up
                    pair.filter(has_text=f"(n={len(both)}, quadratic)").wait_for(timeout=30_000)
                except Exception:
                    screenshot(page, "browser-annotate-failed")
                    raise
                assert float(pair.get_attribute("data-kappa") or "nan") == pytest.approx(want, abs=1e-9)
                assert "alice 4/8" in widget.inner_text() and "bob 4/8" in widget.inner_text()
            wait(alice, "labelled", str(len(set(by["alice"]) | set(by["bob"]))))
            screenshot(page, "browser-annotate-alice", alice)
            screenshot(page, "browser-annotate-bob", bob)
    finally:
        lab.stop()
        hub.close()
