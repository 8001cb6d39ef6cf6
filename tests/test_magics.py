"""%evalhub magics in a real IPython InteractiveShell against a real tracking server."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from _widgetdata import create_experiment, finished_experiment, register_tiny
from IPython.core.error import UsageError

from evalhub._magic_experiment import with_name
from evalhub.widgets import ComparisonTable, Curves, OutputDiff, RegistryBrowser, RunMonitor


@pytest.fixture(scope="module")
def ip() -> Any:
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "evalhub")
    return shell


@pytest.fixture
def magics(ip: Any, hub: Any) -> Any:
    """The registered EvalhubMagics, configured (through %config) for this test's project."""
    ip.run_line_magic("config", f"EvalhubMagics.url = {hub.url!r}")
    ip.run_line_magic("config", f"EvalhubMagics.project = {hub.project!r}")
    return ip.magics_manager.registry["EvalhubMagics"]


def run(ip: Any, cell: str) -> Any:
    """Run a cell; return its value, raise what it raised."""
    result = ip.run_cell(cell)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result


def output(ip: Any, cell: str) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run(ip, cell)
    return buffer.getvalue()


# -- registration and configuration ---------------------------------------------------------------


def test_load_ext_imports_neither_torch_ray_nor_lm_eval() -> None:
    code = (
        "import sys\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'evalhub')\n"
        "assert 'evalhub' in ip.magics_manager.magics['line'] and 'evalhub' in ip.magics_manager.magics['cell']\n"
        "print(sorted(m for m in ('torch', 'ray', 'lm_eval', 'transformers', 'vllm') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_config_sets_url_token_and_project_and_drops_the_old_hub(ip: Any, magics: Any, hub: Any) -> None:
    assert magics.url == hub.url and magics.project == hub.project
    first = magics.hub
    assert first.project == hub.project
    run(ip, "%config EvalhubMagics.token = 'ehk_x'")
    assert magics.token == "ehk_x" and magics._hub is None
    run(ip, "%config EvalhubMagics.token = ''")


def test_help_lists_every_command(ip: Any) -> None:
    text = output(ip, "%evalhub help")
    for command in (
        "connect",
        "models",
        "checkpoints",
        "tasks",
        "experiments",
        "runs",
        "show",
        "compare",
        "diff",
        "curves",
        "cancel",
        "register",
    ):
        assert command in text
    assert "%%evalhub experiment" in text
    assert "--baseline" in output(ip, "%evalhub help compare")
    assert "--baseline" in output(ip, "%evalhub compare -h")


# -- usage errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%evalhub nonsense", "invalid choice: 'nonsense'"),
        ("%evalhub compare", "the following arguments are required: experiment"),
        ("%evalhub compare abc", "expected an integer id, got 'abc'"),
        ("%evalhub diff 1 --filter sideways", "invalid choice: 'sideways'"),
        ("%evalhub experiments --limit 0", "expected a positive integer"),
        ("%evalhub register model m --family f", "--runtime"),
        ("%evalhub show", "name an experiment id"),
        ("%evalhub help nonsense", "no command 'nonsense'"),
        ("%evalhub runs 'unclosed", "cannot split the arguments"),
        ("%evalhub experiment", "use the cell form"),
        ("%%evalhub models\nfoo: 1", "only as 'experiment'"),
        ("%%evalhub experiment\n\n", "the cell is empty"),
    ],
)
def test_a_mistake_is_one_usage_error_line(ip: Any, magics: Any, line: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        run(ip, line)
    assert message in str(info.value)


def test_a_server_error_becomes_a_usage_error(ip: Any, magics: Any) -> None:
    with pytest.raises(UsageError, match=r"%evalhub compare: .*"):
        run(ip, "%evalhub compare 999999")


def test_a_malformed_spec_names_its_line_and_field(ip: Any, magics: Any) -> None:
    cell = "%%evalhub experiment\nname: bad\nmodels:\n  - model: tiny-gpt\n    checkpoints: []\ntasks: [arith-add]\n"
    with pytest.raises(UsageError) as info:
        run(ip, cell)
    text = str(info.value)
    assert "line 4" in text and "checkpoints" in text
    assert "4 |     checkpoints: []" in text


def test_broken_yaml_names_its_line(ip: Any, magics: Any) -> None:
    with pytest.raises(UsageError, match=r"line \d+.*malformed YAML"):
        run(ip, "%%evalhub experiment\nname: x\nmodels: [\n")


def test_an_unknown_name_is_refused_with_its_line_before_any_run_exists(
    ip: Any, magics: Any, hub: Any
) -> None:
    register_tiny(hub, (100,))
    with pytest.raises(UsageError) as info:
        run(
            ip,
            "%%evalhub experiment --no-wait\nname: x\nmodels:\n  - model: tiny-gpt\ntasks: [no-such-task]\n",
        )
    assert "no-such-task" in str(info.value) and "4 | tasks: [no-such-task]" in str(info.value)
    assert hub.experiments().height == 0


def test_name_override_keeps_line_numbers() -> None:
    text = "models:\n  - model: m\nname: old\ntasks: [t]\n"
    assert with_name(text, "new one").splitlines()[2] == 'name: "new one"'
    assert with_name("models: []\n", "n").splitlines() == ["models: []", 'name: "n"']


# -- subcommands -----------------------------------------------------------------------------------


def test_connect_names_the_server_and_project(ip: Any, magics: Any, hub: Any) -> None:
    text = output(ip, f"%evalhub connect {hub.url} --project {hub.project}")
    assert hub.url in text and hub.project in text and "db sqlite" in text


def test_registry_listings_are_dataframes(ip: Any, magics: Any, hub: Any, tmp_path: Path) -> None:
    register_tiny(hub, (100, 200))
    data = tmp_path / "a.jsonl"
    data.write_text('{"question": "1+1=", "answer": "2"}\n')
    hub.register_task("arith-add", data=str(data), prompt="{{question}}", target="{{answer}}")
    hub.register_benchmark("arith", tasks=["arith-add"])
    assert run(ip, "%evalhub families")["name"].to_list() == ["tiny-gpt"]
    assert run(ip, "%evalhub models --family tiny-gpt")["name"].to_list() == ["tiny-gpt"]
    assert run(ip, "%evalhub checkpoints tiny-gpt")["name"].to_list() == ["step-100", "step-200"]
    assert run(ip, "%evalhub tasks")["name"].to_list() == ["arith-add"]
    assert run(ip, "%evalhub benchmarks")["name"].to_list() == ["arith"]
    assert isinstance(run(ip, "%evalhub registry"), RegistryBrowser)


def test_experiments_and_runs(ip: Any, magics: Any, hub: Any) -> None:
    exp = finished_experiment(hub, n=5, steps=(100, 200))
    experiments = run(ip, "%evalhub experiments --status completed")
    assert isinstance(experiments, pl.DataFrame) and experiments["id"].to_list() == [exp["id"]]
    runs = run(ip, f"%evalhub runs {exp['id']}")
    assert runs["checkpoint"].to_list() == ["step-100", "step-200"]
    assert run(ip, f"%evalhub runs {exp['id']} --status failed").height == 0


def test_show_compare_diff_and_curves_return_widgets(ip: Any, magics: Any, hub: Any) -> None:
    exp = finished_experiment(hub, n=12, steps=(100, 200))
    eid = exp["id"]
    assert isinstance(run(ip, f"%evalhub show {eid}"), RunMonitor)
    run_info = run(ip, f"%evalhub show --run {exp['runs'][0]['id']}")
    assert run_info["checkpoint"] == "step-100" and "exact_match" in run_info["metrics"]
    table = run(ip, f"%evalhub compare {eid} --baseline step-100")
    assert isinstance(table, ComparisonTable) and table.baseline == "step-100"
    d = run(ip, f"%evalhub diff {eid} --filter disagree --limit 3")
    assert isinstance(d, OutputDiff) and d.page["filter"] == "disagree" and len(d.page["items"]) == 3
    d = run(ip, f"%evalhub diff {eid} --search apples")
    assert all("apples" in "".join(c["output"] for c in i["cells"]) for i in d.page["items"])
    chart = run(ip, f"%evalhub curves --experiment {eid} --key exact_match")
    assert isinstance(chart, Curves) and chart.to_polars().height == 2


def test_curves_of_training_runs(ip: Any, magics: Any, hub: Any) -> None:
    with hub.init_run("train", config={}) as r:
        for step in range(1, 6):
            r.log({"loss": 1.0 / step}, step=step)
    chart = run(ip, f"%evalhub curves {r.id} --key loss")
    assert chart.to_polars()["step"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(UsageError, match="at least one run"):
        run(ip, "%evalhub curves")


def test_cancel_an_experiment(ip: Any, magics: Any, hub: Any) -> None:
    register_tiny(hub, (100, 200))
    exp = create_experiment(hub, steps=(100, 200))
    text = output(ip, f"%evalhub cancel {exp['id']}")
    assert f"experiment {exp['id']}: cancelled" in text
    assert set(hub.runs(experiment_id=exp["id"])["status"].to_list()) == {"cancelled"}


def test_register_family_model_checkpoint_task_and_benchmark(
    ip: Any, magics: Any, hub: Any, tmp_path: Path
) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text('{"q": "2+2=", "a": "4"}\n{"q": "3+3=", "a": "6"}\n')
    assert "registered family fam" in output(ip, "%evalhub register family fam --modality llm")
    run(ip, "%evalhub register model m1 --family fam --runtime hf")
    run(ip, "%evalhub register checkpoint m1 step-5 --uri /data/m1/step-5 --step 5")
    run(ip, f"%evalhub register task qa --data {data} --prompt {{{{q}}}} --target {{{{a}}}}")
    run(ip, "%evalhub register benchmark bench --tasks qa")
    assert hub.checkpoint("m1", "step-5")["step"] == 5
    assert hub.task("qa")["engine_config"]["doc_to_text"] == "{{q}}"
    assert hub.benchmark("bench")["tasks"] == ["qa"]
    with pytest.raises(UsageError, match="--data FILE"):
        run(ip, "%evalhub register task nodata")
    with pytest.raises(UsageError, match="register"):
        run(ip, "%evalhub register family fam")  # a duplicate name: the server's 409, as one line


def test_braces_and_dollars_take_values_from_the_namespace_but_templates_pass(
    ip: Any, magics: Any, hub: Any
) -> None:
    exp = finished_experiment(hub, n=3, steps=(100,))
    ip.user_ns["the_exp"] = {"id": exp["id"]}
    ip.user_ns["eid"] = exp["id"]
    assert run(ip, "%evalhub compare {the_exp['id']}").experiment_id == exp["id"]
    assert run(ip, "%evalhub runs $eid").height == 1
    with pytest.raises(UsageError, match="cannot evaluate"):
        run(ip, "%evalhub compare {undefined_name}")


# -- the experiment cell, for real: tiny model, local Ray, lm-eval ---------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_experiment_cell_runs_the_tiny_model_and_returns_the_experiment(
    ip: Any, magics: Any, hub: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalhub import tiny

    monkeypatch.setenv("EVALHUB_RAY_START_NICE", "-10")  # a busy box must not time Ray's start out
    monkeypatch.setenv("EVALHUB_RAY_DASHBOARD", "0")

    tiny.build(tmp_path / "tiny", hub=hub, steps=200, save_every=100)
    tiny.write_tasks(tmp_path / "tiny", n=40)
    tiny.register_tasks(hub, tmp_path / "tiny")
    cell = (
        "%%evalhub experiment --name tiny-progress-{n}\n"
        "name: placeholder\n"
        "models:\n"
        "  - model: tiny-gpt\n"
        "    checkpoints: all\n"
        "tasks: [arith-add]\n"
        "config:\n"
        "  limit: 12\n"
        "  batch_size: 4\n"
    )
    ip.user_ns["n"] = 1
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exp = run(ip, cell)
    assert exp.name == "tiny-progress-1"
    assert exp.status() == "completed"
    assert "Experiment" in buffer.getvalue()  # the monitor was displayed (text/plain in a terminal shell)
    table = run(ip, f"%evalhub compare {exp.id}")
    assert len(table.rows) == 2 and all("exact_match" in r["metrics"] for r in table.rows)
    d = run(ip, f"%evalhub diff {exp.id} --limit 4")
    assert d.page["total"] == 12 and len(d.page["items"][0]["cells"]) == 2
    import ray

    ray.shutdown()
