"""Hub: registry round trips, DataFrame reads, task registration, clear errors (real server)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from evalhub.client import Client
from evalhub.errors import Conflict, InvalidValue, NotFound, Unauthorized
from evalhub.hub import Hub, connect


@pytest.fixture
def hub(server_url: str) -> Hub:
    return Hub(Client(server_url, project=f"h{uuid.uuid4().hex[:10]}"))


@pytest.fixture
def arith(tmp_path: Path) -> Path:
    path = tmp_path / "arith-add.jsonl"
    rows = [{"question": f"{a}+{a}=", "answer": str(2 * a)} for a in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _registry(hub: Hub) -> None:
    hub.register_family("tiny-gpt", modality="llm", description="a tiny GPT")
    hub.register_model("tiny-gpt-hf", family="tiny-gpt", runtime="hf", default_params={"dtype": "float32"})
    for step in (300, 100, 200):
        hub.register_checkpoint("tiny-gpt-hf", f"step-{step}", uri=f"/data/tiny/step-{step}", step=step)


def test_registry_round_trip(hub: Hub) -> None:
    _registry(hub)
    assert hub.family("tiny-gpt")["modality"] == "llm"
    model = hub.model("tiny-gpt-hf")
    assert model["family"] == "tiny-gpt" and model["runtime"] == "hf"
    assert model["default_params"] == {"dtype": "float32"}
    assert hub.model(model["id"])["name"] == "tiny-gpt-hf"
    ckpt = hub.checkpoint("tiny-gpt-hf", "step-200")
    assert ckpt["uri"] == "/data/tiny/step-200" and ckpt["step"] == 200
    assert hub.checkpoint(ckpt["id"])["name"] == "step-200"


def test_list_reads_are_dataframes(hub: Hub) -> None:
    _registry(hub)
    families = hub.families()
    assert isinstance(families, pl.DataFrame)
    assert families["name"].to_list() == ["tiny-gpt"]
    models = hub.models(family="tiny-gpt")
    assert models.columns[:4] == ["id", "name", "family", "runtime"]
    ckpts = hub.checkpoints(model="tiny-gpt-hf")
    assert ckpts["step"].to_list() == [100, 200, 300]  # sorted by step
    assert hub.models(family="other").height == 0


def test_empty_lists_are_empty_frames_with_columns(hub: Hub) -> None:
    runs = hub.runs()
    assert runs.height == 0
    assert {"id", "name", "status"} <= set(runs.columns)


def test_unknown_names_are_not_found_with_the_name(hub: Hub) -> None:
    with pytest.raises(NotFound, match="no-such-model"):
        hub.model("no-such-model")
    with pytest.raises(NotFound, match="ghost-family"):
        hub.register_model("m", family="ghost-family", runtime="hf")
    _registry(hub)
    with pytest.raises(NotFound, match="step-999"):
        hub.checkpoint("tiny-gpt-hf", "step-999")
    with pytest.raises(NotFound, match="nobody"):
        hub.checkpoint("nobody", "step-1")


def test_duplicate_is_conflict(hub: Hub) -> None:
    hub.register_family("dup")
    with pytest.raises(Conflict, match="dup"):
        hub.register_family("dup")


def test_register_task_writes_the_lm_eval_config(hub: Hub, arith: Path) -> None:
    task = hub.register_task("arith-add", data=arith, prompt="{{question}}", target="{{answer}}")
    config = task["engine_config"]
    assert task["engine"] == "lm_eval" and task["metrics"] == ["exact_match"]
    assert config["task"] == "arith-add" and config["dataset_path"] == "json"
    assert config["dataset_kwargs"] == {"data_files": {"test": str(arith.resolve())}}
    assert config["test_split"] == "test" and config["output_type"] == "generate_until"
    assert config["doc_to_text"] == "{{question}}" and config["doc_to_target"] == "{{answer}}"
    assert config["generation_kwargs"] == {"until": ["\n"], "max_gen_toks": 32, "do_sample": False}
    assert config["metric_list"] == [
        {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}
    ]
    dataset = hub.dataset(task["dataset"])
    assert dataset["num_rows"] == 12 and dataset["content_hash"].startswith("sha256:")
    assert set(dataset["schema"]["columns"]) == {"question", "answer"}
    assert hub.tasks()["name"].to_list() == ["arith-add"]


def test_register_task_generation_overrides(hub: Hub, arith: Path) -> None:
    task = hub.register_task(
        "arith-long",
        data=arith,
        prompt="Q: {{ question }}",
        target="{{answer}}",
        generation={"max_gen_toks": 8},
    )
    assert task["engine_config"]["generation_kwargs"] == {
        "until": ["\n"],
        "max_gen_toks": 8,
        "do_sample": False,
    }


def test_register_multiple_choice_task(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps({"q": "1+1=", "choices": ["1", "2", "3"], "label": 1}) + "\n")
    task = hub.register_task(
        "arith-mc",
        data=path,
        prompt="{{q}}",
        target="{{label}}",
        output_type="multiple_choice",
        choices="{{choices}}",
    )
    config = task["engine_config"]
    assert config["output_type"] == "multiple_choice" and config["doc_to_choice"] == "{{choices}}"
    assert config["metric_list"][0]["metric"] == "acc" and config["generation_kwargs"] is None
    assert task["type"] == "mcq"


def test_two_tasks_share_one_data_file(hub: Hub, arith: Path) -> None:
    a = hub.register_task("plain", data=arith, prompt="{{question}}", target="{{answer}}")
    b = hub.register_task("fancy", data=arith, prompt="Compute {{question}}", target="{{answer}}")
    assert a["dataset"] == b["dataset"] == "arith-add"
    assert hub.datasets().height == 1


def test_missing_column_is_refused_by_name(hub: Hub, arith: Path) -> None:
    with pytest.raises(InvalidValue, match="'prompt_text'") as info:
        hub.register_task("bad", data=arith, prompt="{{prompt_text}}", target="{{answer}}")
    assert "question" in str(info.value)  # lists the columns that exist
    assert hub.tasks().height == 0


def test_missing_data_file_is_refused(hub: Hub, tmp_path: Path) -> None:
    with pytest.raises(InvalidValue, match="does not exist"):
        hub.register_task("gone", data=tmp_path / "nope.jsonl", prompt="{{q}}", target="{{a}}")


def test_csv_task(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("question,answer\n2+2=,4\n3+3=,6\n")
    task = hub.register_task("qa-csv", data=path, prompt="{{question}}", target="{{answer}}")
    assert task["engine_config"]["dataset_path"] == "csv"
    assert hub.dataset("qa")["num_rows"] == 2


def test_lm_eval_task_by_name(hub: Hub) -> None:
    task = hub.register_task("gsm8k", lm_eval_task="gsm8k", metrics=["exact_match"])
    assert task["engine_config"] == {"task": "gsm8k"}


def test_benchmark_round_trip(hub: Hub, arith: Path) -> None:
    hub.register_task("arith-add", data=arith, prompt="{{question}}", target="{{answer}}")
    hub.register_benchmark("arith", ["arith-add"], config={"limit": 5})
    bench = hub.benchmark("arith")
    assert bench["tasks"] == ["arith-add"] and bench["config"]["limit"] == 5
    assert hub.benchmarks()["tasks"].to_list() == [["arith-add"]]


def test_series_of_several_runs(hub: Hub) -> None:
    ids = []
    for i in range(2):
        with hub.init_run(f"r{i}", system_metrics=False) as run:
            run.log({"loss": float(i)}, step=0)
            run.log({"loss": float(i) + 1}, step=1)
        ids.append(run.id)
    df = hub.series(ids, "loss")
    assert df.columns[0] == "run_id"
    assert df.filter(pl.col("run_id") == ids[1])["value"].to_list() == [1.0, 2.0]


def test_repr_names_url_and_project(server_url: str) -> None:
    hub = connect(server_url, project="vision")
    assert repr(hub) == f"Hub(url={server_url.rstrip('/')!r}, project='vision')"
    assert hub.project == "vision" and hub.token is None


def test_connect_reads_the_environment(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHUB_URL", server_url)
    monkeypatch.setenv("EVALHUB_PROJECT", "envproj")
    hub = connect()
    assert hub.url == server_url.rstrip("/") and hub.project == "envproj"
    assert hub.families().height == 0


def test_experiment_handle_and_compare(hub: Hub) -> None:
    hub.register_family("tiny")
    hub.register_model("tiny-hf", family="tiny", runtime="hf")
    runs = [{"name": f"r{i}", "type": "inference", "model": "tiny-hf"} for i in range(2)]
    exp = hub.client.post(
        "/experiments", {"name": "cmp", "spec": {"name": "cmp"}, "client_key": uuid.uuid4().hex, "runs": runs}
    )
    first = exp["runs"][0]["id"]
    events = [
        {"seq": 1, "type": "status", "status": "running"},
        {"seq": 2, "type": "metrics", "values": {"exact_match": 0.75}},
    ]
    hub.client.post(f"/runs/{first}/events", {"stream": "attempt-1", "events": events})
    table = hub.compare(exp["id"])
    assert table.height == 2 and table.schema["exact_match"] == pl.Float64
    assert table.filter(pl.col("run_id") == first)["exact_match"].to_list() == [0.75]
    handle = hub.experiment(exp["id"])
    assert handle.name == "cmp"
    assert hub.runs(experiment_id=exp["id"]).height == 2
    assert hub.experiments()["name"].to_list() == ["cmp"]


def test_round_trip_on_each_backend(any_server: Any, arith: Path) -> None:
    hub = Hub(Client(any_server.url, project=f"b{uuid.uuid4().hex[:10]}"))
    _registry(hub)
    hub.register_task("arith-add", data=arith, prompt="{{question}}", target="{{answer}}")
    assert hub.checkpoints(model="tiny-gpt-hf")["step"].to_list() == [100, 200, 300]
    assert hub.task("arith-add")["engine_config"]["doc_to_text"] == "{{question}}"
    with hub.init_run("train", model="tiny-gpt-hf", system_metrics=False) as run:
        for step in range(50):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log_checkpoint("/data/tiny/step-400", step=400)
    assert hub.series(run.id, "loss").height == 50
    assert hub.checkpoint("tiny-gpt-hf", "step-400")["run_id"] == run.id


def test_token_auth(server_for: Any) -> None:
    srv = server_for(auth="token", admin_token="admin-secret")
    admin = Client(srv.url, token="admin-secret")
    admin.post("/projects", {"name": "team"})
    token = admin.post("/projects/team/tokens", {"name": "ci"})["token"]
    hub = connect(srv.url, token=token)
    hub.register_family("secured")
    assert hub.families()["name"].to_list() == ["secured"]
    with pytest.raises(Unauthorized):
        connect(srv.url, token="ehk_wrong").families()
    with pytest.raises(Unauthorized):
        connect(srv.url).families()


def test_a_secret_in_default_params_is_refused(hub: Any) -> None:
    from evalhub.errors import InvalidValue

    hub.register_family("api", modality="llm")
    with pytest.raises(InvalidValue, match="api_key_env"):
        hub.register_model("gpt", family="api", runtime="openai", default_params={"api_key": "sk-1"})
    assert (
        hub.register_model("gpt", family="api", runtime="openai", default_params={"api_key_env": "K"})["name"]
        == "gpt"
    )
