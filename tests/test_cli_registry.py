"""``evalhub families|models|checkpoints|tasks|experiments|runs`` and ``evalhub export`` (real server)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from evalhub.cli import cli, main
from evalhub.client import Client
from evalhub.hub import Hub


@pytest.fixture
def project() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


@pytest.fixture
def hub(server_url: str, project: str) -> Hub:
    return Hub(Client(server_url, project=project))


@pytest.fixture
def invoke(server_url: str, project: str) -> Any:
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(
            cli, [*args, "--url", server_url, "--project", project], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result

    return run


def _experiment(hub: Hub, tmp_path: Path) -> dict[str, Any]:
    """An experiment of three runs (two checkpoints, one failed run), with metrics and samples."""
    hub.register_family("tiny")
    hub.register_model("tiny-hf", family="tiny", runtime="hf")
    for step in (100, 200):
        hub.register_checkpoint("tiny-hf", f"step-{step}", uri=f"/w/{step}", step=step)
    data = tmp_path / "arith.jsonl"
    data.write_text(json.dumps({"question": "1+1=", "answer": "2"}) + "\n")
    hub.register_task("arith-add", data=data, prompt="{{question}}", target="{{answer}}")
    runs = [
        {
            "name": f"tiny-hf@{c}/arith-add#{i}",
            "type": "inference",
            "model": "tiny-hf",
            "checkpoint": c,
            "task": "arith-add",
        }
        for i, c in enumerate(("step-100", "step-200", "step-200"))
    ]
    exp = hub.client.post(
        "/experiments",
        {
            "name": "progress",
            "spec": {"name": "progress"},
            "config": {},
            "client_key": uuid.uuid4().hex,
            "runs": runs,
        },
    )
    for i, run in enumerate(exp["runs"]):
        events: list[dict[str, Any]] = [{"seq": 1, "type": "status", "status": "running"}]
        if i < 2:
            events += [
                {
                    "seq": 2,
                    "type": "metrics",
                    "values": {"exact_match": 0.25 * (i + 1), "latency_p50_ms": 3.0},
                },
                {
                    "seq": 3,
                    "type": "samples",
                    "samples": [
                        {
                            "sample_key": "k0",
                            "index": 0,
                            "prompt": "1+1=",
                            "reference": "2",
                            "output": str(i + 1),
                            "scores": {"exact_match": float(i)},
                        }
                    ],
                },
                {"seq": 4, "type": "status", "status": "completed"},
            ]
        else:
            events.append({"seq": 2, "type": "status", "status": "failed", "error": "worker died"})
        hub.client.post(f"/runs/{run['id']}/events", {"stream": "attempt-1", "events": events})
    return exp


def test_listing_commands_print_tables(hub: Hub, invoke: Any) -> None:
    hub.register_family("tiny", modality="llm")
    hub.register_family("pix", modality="t2i")
    hub.register_model("tiny-hf", family="tiny", runtime="hf")
    hub.register_checkpoint("tiny-hf", "step-100", uri="/w/100", step=100)
    out = invoke("families").output
    assert out.splitlines()[0].split() == ["id", "name", "modality", "description"]
    assert "tiny" in out and "pix" in out
    assert "pix" not in invoke("families", "--modality", "llm").output
    assert "tiny-hf" in invoke("models", "--family", "tiny").output
    assert "no models" in invoke("models", "--family", "pix").output
    line = invoke("checkpoints", "--model", "tiny-hf").output.splitlines()[1]
    assert "step-100" in line and "/w/100" in line


def test_listing_json(hub: Hub, invoke: Any) -> None:
    hub.register_family("tiny")
    rows = json.loads(invoke("families", "--json").output)
    assert [r["name"] for r in rows] == ["tiny"]


def test_runs_filters_and_limit(hub: Hub, invoke: Any, tmp_path: Path) -> None:
    exp = _experiment(hub, tmp_path)
    rows = json.loads(invoke("runs", "--experiment", str(exp["id"]), "--json").output)
    assert len(rows) == 3
    failed = json.loads(invoke("runs", "--status", "failed", "--json").output)
    assert [r["status"] for r in failed] == ["failed"]
    assert len(json.loads(invoke("runs", "--limit", "2", "--json").output)) == 2
    table = invoke("runs", "--experiment", str(exp["id"])).output
    assert len(table.splitlines()) == 4 and "completed" in table and "failed" in table
    exps = invoke("experiments").output
    assert "progress" in exps and "failed" in exps


def test_tasks_listing(hub: Hub, invoke: Any, tmp_path: Path) -> None:
    _experiment(hub, tmp_path)
    out = invoke("tasks").output
    assert "arith-add" in out and "exact_match" in out


def test_export_csv(hub: Hub, invoke: Any, tmp_path: Path) -> None:
    exp = _experiment(hub, tmp_path)
    target = tmp_path / "cmp.csv"
    assert "wrote 3 runs" in invoke("export", str(exp["id"]), "-o", str(target)).output
    df = pl.read_csv(target)
    assert df.height == 3
    assert {"run_id", "checkpoint", "status", "exact_match", "latency_p50_ms"} <= set(df.columns)
    by_ckpt = dict(zip(df["checkpoint"].to_list(), df["exact_match"].to_list(), strict=False))
    assert by_ckpt["step-100"] == 0.25


def test_export_parquet(hub: Hub, invoke: Any, tmp_path: Path) -> None:
    exp = _experiment(hub, tmp_path)
    target = tmp_path / "cmp.parquet"
    invoke("export", str(exp["id"]), "--format", "parquet", "-o", str(target))
    df = pl.read_parquet(target)
    assert sorted(df["exact_match"].drop_nulls().to_list()) == [0.25, 0.5]
    assert df.schema["exact_match"] == pl.Float64


def test_export_all_carries_every_table(hub: Hub, invoke: Any, tmp_path: Path) -> None:
    exp = _experiment(hub, tmp_path)
    queue = hub.annotation_queue(exp["id"], "ok", {"kind": "choice", "options": ["no", "yes"]})
    queue.person = "alice"
    queue.label(queue.items()[0], "yes")
    out = invoke("export", str(exp["id"]), "--all", "--format", "csv", "-o", str(tmp_path / "whole")).output
    assert "wrote experiment" in out
    labels = pl.read_csv(tmp_path / "whole" / "labels.csv")
    assert labels.select("queue", "person", "choice", "value").rows() == [("ok", "alice", "yes", 1.0)]
    assert "score:ok.alice" in pl.read_csv(tmp_path / "whole" / "samples.csv").columns
    invoke("export", str(exp["id"]), "--all", "-o", str(tmp_path / "whole.json"))
    assert len(json.loads((tmp_path / "whole.json").read_text())["labels"]) == 1


def test_export_json_with_samples(hub: Hub, invoke: Any, tmp_path: Path) -> None:
    exp = _experiment(hub, tmp_path)
    target = tmp_path / "cmp.json"
    invoke("export", str(exp["id"]), "--format", "json", "--samples", "-o", str(target))
    doc = json.loads(target.read_text())
    assert doc["experiment"]["name"] == "progress"
    assert "exact_match" in doc["metrics"]
    outputs = sorted(r["samples"][0]["output"] for r in doc["runs"] if r["samples"])
    assert outputs == ["1", "2"]


def test_unknown_experiment_is_one_line_and_nonzero(server_url: str, project: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "evalhub.cli", "export", "999999", "-o", str(tmp_path / "x.csv"),
         "--url", server_url, "--project", project],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "999999" in proc.stderr or "not found" in proc.stderr.lower()


def test_export_needs_a_format(server_url: str, project: str, tmp_path: Path) -> None:
    code = main(["export", "1", "-o", str(tmp_path / "x.txt"), "--url", server_url, "--project", project])
    assert code != 0


def test_unknown_status_is_refused() -> None:
    result = CliRunner().invoke(cli, ["runs", "--status", "finished", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "'finished' is not one of" in result.output
