"""The experiment spec: YAML -> typed spec, and refusals that name the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalhub.errors import SpecError
from evalhub.spec import ExperimentSpec, line_of, load_spec, parse_spec

GOOD = """\
name: tiny-progress
models:
  - model: tiny-gpt
    checkpoints: [step-100, step-200, step-300]
    runtimes: [hf]
tasks: [arith-add, arith-mc]
config:
  limit: 200
  seed: 1234
  batch_size: 16
  generation: {max_new_tokens: 16, until: ["\\n"], temperature: 0}
  resources: {gpus_per_worker: 1, max_workers: 4}
"""


def test_the_design_example_parses_into_typed_fields() -> None:
    spec = load_spec(GOOD)
    assert spec.name == "tiny-progress"
    assert spec.models[0].checkpoints == ["step-100", "step-200", "step-300"]
    assert spec.models[0].runtimes == ["hf"]
    assert spec.tasks == ["arith-add", "arith-mc"]
    assert spec.config.limit == 200 and spec.config.batch_size == 16
    assert spec.config.generation.as_gen_kwargs() == {
        "max_gen_toks": 16,
        "until": ["\n"],
        "temperature": 0.0,
        "do_sample": False,
    }
    assert spec.config.resources.max_workers == 4
    assert spec.config.max_attempts == 3


def test_checkpoints_default_to_all_and_a_single_name_becomes_a_list() -> None:
    spec = load_spec("name: x\nmodels:\n  - model: m\n  - model: n\n    checkpoints: s1\ntasks: t\n")
    assert spec.models[0].checkpoints == "all"
    assert spec.models[1].checkpoints == ["s1"]
    assert spec.tasks == ["t"]


def test_a_benchmark_alone_is_enough() -> None:
    assert load_spec("name: x\nmodels: [{model: m}]\nbenchmark: arith\n").benchmark == "arith"


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(SpecError) as err:
        load_spec("name: x\nmodels:\n  - model: m\n    checkpoints: [a, b\ntasks: [t]\n")
    assert err.value.line == 5
    assert "malformed YAML" in str(err.value)


def test_an_unknown_key_names_its_line_and_dotted_field() -> None:
    text = GOOD.replace("  batch_size: 16", "  bach_size: 16")
    with pytest.raises(SpecError) as err:
        load_spec(text)
    assert err.value.field == "config.bach_size"
    assert err.value.line == 10
    assert "unknown key" in str(err.value)


def test_a_wrong_type_deep_in_a_list_names_line_and_field() -> None:
    text = "name: x\nmodels:\n  - model: m\n  - model: n\n    checkpoints: 5\ntasks: [t]\n"
    with pytest.raises(SpecError) as err:
        load_spec(text)
    assert err.value.field == "models[1].checkpoints"
    assert err.value.line == 5


def test_a_non_number_where_a_number_is_needed_is_refused() -> None:
    text = "name: x\nmodels: [{model: m}]\ntasks: [t]\nconfig:\n  generation:\n    max_new_tokens: lots\n"
    with pytest.raises(SpecError) as err:
        load_spec(text)
    assert err.value.field == "config.generation.max_new_tokens"
    assert err.value.line == 6


def test_a_missing_field_is_named() -> None:
    with pytest.raises(SpecError) as err:
        load_spec("models: [{model: m}]\ntasks: [t]\n")
    assert err.value.field == "name"
    assert "missing" in str(err.value)


def test_no_tasks_and_no_benchmark_is_refused() -> None:
    with pytest.raises(SpecError, match="'tasks' or a 'benchmark'"):
        load_spec("name: x\nmodels: [{model: m}]\n")


def test_an_empty_models_list_is_refused() -> None:
    with pytest.raises(SpecError) as err:
        load_spec("name: x\nmodels: []\ntasks: [t]\n")
    assert err.value.field == "models"
    assert err.value.line == 2


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(SpecError, match="a spec is a mapping"):
        load_spec(text)


def test_parse_spec_takes_a_path_a_dict_and_text(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(GOOD)
    from_path, text = parse_spec(path)
    assert text == GOOD
    from_str_path, _ = parse_spec(str(path))
    from_dict, dict_text = parse_spec({"name": "d", "models": [{"model": "m"}], "tasks": ["t"]})
    assert from_path == from_str_path == load_spec(GOOD)
    assert from_dict.name == "d" and "name: d" in dict_text
    assert isinstance(parse_spec(from_dict)[0], ExperimentSpec)


def test_a_missing_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no spec file"):
        parse_spec(str(tmp_path / "nope.yaml"))


def test_line_of_finds_a_list_item() -> None:
    assert line_of(GOOD, ["models", 0, "checkpoints", 1]) == 4
    assert line_of(GOOD, ["tasks", 1]) == 6


def test_a_secret_in_params_is_refused_naming_the_variable_to_use() -> None:
    from evalhub.errors import SpecError
    from evalhub.spec import load_spec

    text = (
        "name: s\nmodels:\n  - model: gpt\n    params: {api_key: sk-123, base_url: 'http://x'}\ntasks: [t]\n"
    )
    with pytest.raises(SpecError) as refused:
        load_spec(text)
    message = str(refused.value)
    assert "line 4" in message and "api_key_env: API_KEY" in message and "sk-123" not in message
    assert (
        load_spec(text.replace("api_key: sk-123", "api_key_env: MY_KEY")).models[0].params["api_key_env"]
        == "MY_KEY"
    )
