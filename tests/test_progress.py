"""Progress off a terminal: a plain line per change, never a carriage return (logs, CI, ``evalhub run > log``)."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest

from evalhub._progress import LineProgress
from evalhub.experiment import _bar, _update_bar


def test_a_line_per_change_of_the_counts_or_a_5_percent_step() -> None:
    out = io.StringIO()
    p = LineProgress("experiment 7", unit="req", stream=out)
    p.update(0, 0, {"queued": 2})
    p.update(0, 0, {"queued": 2})  # nothing changed
    p.update(0, 200, {"queued": 1, "running": 1})
    for done in range(0, 201):
        p.update(done, 200, {"queued": 1, "running": 1})
    p.update(200, 200, {"completed": 2})
    p.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "experiment 7: 0 req · queued=2"
    assert lines[1] == "experiment 7: 0/200 req (0%) · queued=1 running=1"
    # one line per 5 % (20 of them, the last at 100 %), then the counts' change
    assert lines[2] == "experiment 7: 10/200 req (5%) · queued=1 running=1"
    assert lines[-2] == "experiment 7: 200/200 req (100%) · queued=1 running=1"
    assert lines[-1] == "experiment 7: 200/200 req (100%) · completed=2"
    assert len(lines) == 2 + 20 + 1 and p.lines == len(lines)


def test_done_never_shows_more_than_the_total_and_without_a_total_only_counts_make_lines() -> None:
    out = io.StringIO()
    p = LineProgress("e", stream=out)
    for done in range(50):
        p.update(done, 0, {"running": 1})
    p.update(60, 40, {"running": 1})
    assert out.getvalue().splitlines() == ["e: 0 · running=1", "e: 40/40 (100%) · running=1"]


def test_off_a_terminal_the_experiment_bar_is_lines(capsys: pytest.CaptureFixture[str]) -> None:
    class Exp:
        id = 3

    bar = _bar(Exp())  # type: ignore[arg-type]
    assert isinstance(bar, LineProgress)  # pytest's captured stderr is not a terminal
    _update_bar(bar, {"progress": {"done": 1, "total": 4}, "counts": {"running": 1, "queued": 0}})
    _update_bar(bar, {"progress": {"done": 4, "total": 4}, "counts": {"completed": 1}})
    bar.close()
    err = capsys.readouterr().err
    assert err == "experiment 3: 1/4 req (25%) · running=1\nexperiment 3: 4/4 req (100%) · completed=1\n"


def test_on_a_terminal_it_stays_a_tqdm_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())

    class Exp:
        id = 4

    bar = _bar(Exp())  # type: ignore[arg-type]
    try:
        assert not isinstance(bar, LineProgress)
        _update_bar(bar, {"progress": {"done": 2, "total": 8}, "counts": {"running": 1}})
        assert (bar.n, bar.total) == (2, 8)
    finally:
        bar.close()


def test_wait_with_progress_on_a_real_server_prints_lines(
    hub: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [{"name": f"r{i}", "type": "offline_eval", "task": "t"} for i in range(2)]
    exp_data = hub.client.post("/api/experiments", {"name": "progress", "runs": runs})
    run_ids = [r["id"] for r in exp_data["runs"]]

    def worker() -> None:
        for rid in run_ids:
            post = hub.client.post
            post(f"/api/runs/{rid}/events", {"stream": "w", "attempt": 1, "events": [
                {"seq": 1, "type": "status", "status": "running"}]})  # fmt: skip
            for done in range(1, 11):
                post(f"/api/runs/{rid}/events", {"stream": "w", "attempt": 1, "events": [
                    {"seq": 1 + done, "type": "progress", "done": done, "total": 10}]})  # fmt: skip
                time.sleep(0.02)
            post(f"/api/runs/{rid}/events", {"stream": "w", "attempt": 1, "events": [
                {"seq": 20, "type": "status", "status": "completed"}]})  # fmt: skip

    thread = threading.Thread(target=worker)
    thread.start()
    exp = hub.experiment(exp_data["id"])
    exp.wait(timeout=60, progress=True, poll=0.02)
    thread.join()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"experiment {exp.id}:")]
    assert lines and lines[-1].endswith("· completed=2"), err
    assert len(lines) == len(set(lines))  # a line per change, none repeated
