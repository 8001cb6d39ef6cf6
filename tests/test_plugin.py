"""Bring-your-own-model repos: ai_eval_config.yaml validation, registration against a real tracking
server, the python adapter over the fixture repo (tests/fixtures/plugin_repo), and ``evalhub register``."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _tinymodel import FIXTURE_REPO

from evalhub.adapters import CheckpointRef, GenerationParams, load_adapter
from evalhub.errors import AdapterError, RepoConfigError
from evalhub.plugin import load_config, register_repo

GOOD = textwrap.dedent(
    """\
    family: arith-rules
    model: arith-solver
    runtime: python
    adapter: arith_solver:ArithSolver
    checkpoints:
      - {name: v1, uri: weights/v1, step: 1}
    """
)


def _repo(tmp_path: Path, text: str) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURE_REPO, repo)
    (repo / "ai_eval_config.yaml").write_text(text)
    return repo


def _ref(name: str = "v2", adapter: str = "arith_solver:ArithSolver", **params: Any) -> CheckpointRef:
    return CheckpointRef(
        "arith-solver",
        name,
        str(FIXTURE_REPO / "weights" / name),
        "python",
        adapter=adapter,
        code_uri=str(FIXTURE_REPO),
        params=params,
    )


def test_fixture_config_loads_with_absolute_checkpoint_uris() -> None:
    cfg = load_config(FIXTURE_REPO)
    assert (cfg.family, cfg.model, cfg.runtime, cfg.adapter) == (
        "arith-rules",
        "arith-solver",
        "python",
        "arith_solver:ArithSolver",
    )
    assert [(c.name, c.step) for c in cfg.checkpoints] == [("v1", 1), ("v2", 2)]
    assert cfg.checkpoints[0].uri == str((FIXTURE_REPO / "weights" / "v1").resolve())


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD.replace("family: arith-rules\n", ""), "family"),
        (GOOD.replace("model: arith-solver", "model: 12 bad name"), "model"),
        (GOOD.replace("runtime: python", "runtime: tensorrt"), "runtime"),
        (GOOD.replace("adapter: arith_solver:ArithSolver", "adapter: arith_solver.ArithSolver"), "adapter"),
        (GOOD.replace("adapter: arith_solver:ArithSolver\n", ""), "adapter"),
        (GOOD.replace("{name: v1, uri: weights/v1, step: 1}", "{name: v1, step: 1}"), "checkpoints[0].uri"),
        (GOOD.replace("step: 1}", "step: one}"), "checkpoints[0].step"),
        (GOOD + "  - {name: v1, uri: weights/v2}\n", "checkpoints[1].name"),
        (
            GOOD.replace("checkpoints:\n  - {name: v1, uri: weights/v1, step: 1}", "checkpoints: v1"),
            "checkpoints",
        ),
        (GOOD + "weights: somewhere\n", "weights"),
    ],
)
def test_invalid_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(RepoConfigError) as caught:
        load_config(_repo(tmp_path, text))
    assert caught.value.field == field
    assert f"field '{field}'" in str(caught.value) and "ai_eval_config.yaml" in str(caught.value)


def test_repo_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RepoConfigError, match=r"no ai_eval_config\.yaml"):
        load_config(tmp_path)


def test_yaml_syntax_error_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RepoConfigError, match="not valid YAML"):
        load_config(_repo(tmp_path, "family: [unclosed\n"))


def test_register_repo_records_family_model_and_checkpoints(hub: Any) -> None:
    result = register_repo(hub, FIXTURE_REPO)
    assert result["family"]["name"] == "arith-rules"
    model = hub.model("arith-solver")
    assert model["runtime"] == "python"
    assert model["adapter"] == "arith_solver:ArithSolver"
    assert model["code_uri"] == str(FIXTURE_REPO.resolve())
    assert model["default_params"] == {"answer_suffix": ""}
    checkpoints = hub.checkpoints(model="arith-solver")
    assert checkpoints["name"].to_list() == ["v1", "v2"]
    assert checkpoints["uri"].to_list() == [
        str((FIXTURE_REPO / "weights" / n).resolve()) for n in ("v1", "v2")
    ]


def test_register_repo_twice_is_idempotent(hub: Any) -> None:
    first = register_repo(hub, FIXTURE_REPO)
    again = hub.register_repo(FIXTURE_REPO)
    assert again["model"]["id"] == first["model"]["id"]
    assert [c["id"] for c in again["checkpoints"]] == [c["id"] for c in first["checkpoints"]]
    assert len(hub.checkpoints(model="arith-solver")) == 2


def test_same_model_name_from_another_repo_conflicts(hub: Any, tmp_path: Path) -> None:
    from evalhub.errors import Conflict

    register_repo(hub, FIXTURE_REPO)
    with pytest.raises(Conflict, match="rename the model"):
        register_repo(hub, _repo(tmp_path, GOOD))


def test_registered_checkpoint_loads_through_the_python_adapter(hub: Any) -> None:
    register_repo(hub, FIXTURE_REPO)
    model, cp = hub.model("arith-solver"), hub.checkpoint("arith-solver", "v1")
    ref = CheckpointRef(
        model["name"],
        cp["name"],
        cp["uri"],
        model["runtime"],
        adapter=model["adapter"],
        code_uri=model["code_uri"],
        params=model["default_params"],
    )
    out = load_adapter(ref).generate(["3+4= ", "12+30= "], GenerationParams(until=("\n",)))
    assert [g.text for g in out] == ["7", "0"]  # v1 only adds single digits


def test_later_plugin_checkpoint_solves_more() -> None:
    prompts = ["3+4= ", "12+30= ", "45+5= "]
    params = GenerationParams(until=("\n",))
    v1 = [g.text for g in load_adapter(_ref("v1")).generate(prompts, params)]
    v2 = [g.text for g in load_adapter(_ref("v2")).generate(prompts, params)]
    assert v1 == ["7", "0", "0"]
    assert v2 == ["7", "42", "50"]


def test_plugin_strings_are_wrapped_and_cut_at_stops() -> None:
    adapter = load_adapter(_ref(answer_suffix=" ok"))
    (gen,) = adapter.generate(["2+2= "], GenerationParams(until=(" ",)))
    assert gen.text == "4"
    (gen,) = adapter.generate(["2+2= "], GenerationParams(until=("\n",)))
    assert gen.text == "4 ok"


def test_plugin_loglikelihood_is_passed_through() -> None:
    out = load_adapter(_ref()).loglikelihood([("2+3=", " 5"), ("2+3=", " 6")])
    assert out == [(-0.1, True), (-5.0, False)]


def test_wrong_number_of_outputs_is_an_adapter_error() -> None:
    adapter = load_adapter(_ref(adapter="arith_solver:WrongCount"))
    with pytest.raises(AdapterError, match="returned 1 outputs for 2 inputs"):
        adapter.generate(["1+1= ", "2+2= "], GenerationParams())


def test_plugin_raising_on_load_is_an_adapter_error_with_its_message() -> None:
    with pytest.raises(
        AdapterError, match=r"arith_solver:BrokenOnLoad failed to load.*cannot find tokenizer files"
    ):
        load_adapter(_ref(adapter="arith_solver:BrokenOnLoad"))


def test_plugin_raising_in_generate_is_an_adapter_error(tmp_path: Path) -> None:
    repo = _repo(tmp_path, GOOD)
    (repo / "flaky.py").write_text(
        "class Flaky:\n"
        "    def __init__(self, uri, params): pass\n"
        "    def generate(self, prompts, params): raise ValueError('GPU fell off the bus')\n"
    )
    ref = CheckpointRef(
        "m", "c", str(repo / "weights" / "v1"), "python", adapter="flaky:Flaky", code_uri=str(repo)
    )
    with pytest.raises(AdapterError, match=r"flaky:Flaky\.generate raised ValueError: GPU fell off the bus"):
        load_adapter(ref).generate(["1+1= "], GenerationParams())


def test_missing_module_or_class_is_an_adapter_error() -> None:
    with pytest.raises(AdapterError, match="cannot import no_such_module"):
        load_adapter(_ref(adapter="no_such_module:Thing"))
    with pytest.raises(AdapterError, match="has no NoSuchClass"):
        load_adapter(_ref(adapter="arith_solver:NoSuchClass"))


def test_plugin_without_loglikelihood_refuses_it(tmp_path: Path) -> None:
    repo = _repo(tmp_path, GOOD)
    (repo / "genonly.py").write_text(
        "class GenOnly:\n"
        "    def __init__(self, uri, params): pass\n"
        "    def generate(self, prompts, params): return ['x' for _ in prompts]\n"
    )
    ref = CheckpointRef(
        "m", "c", str(repo / "weights" / "v1"), "python", adapter="genonly:GenOnly", code_uri=str(repo)
    )
    with pytest.raises(AdapterError, match="has no loglikelihood method"):
        load_adapter(ref).loglikelihood([("a", "b")])


def test_register_command_registers_the_repo(server_url: str, hub: Any) -> None:
    from evalhub.cli import main

    assert main(["register", str(FIXTURE_REPO), "--url", server_url, "--project", hub.project]) == 0
    assert hub.checkpoints(model="arith-solver")["name"].to_list() == ["v1", "v2"]


def test_register_command_reports_a_bad_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evalhub.cli import main

    repo = _repo(tmp_path, GOOD.replace("runtime: python", "runtime: tensorrt"))
    assert main(["register", str(repo), "--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "field 'runtime'" in err and "\n" not in err
