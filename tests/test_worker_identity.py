"""What a worker's results are reused and cached under (its identity): the weights' content, so the
same weights behind two paths are one model; but a python plugin is handed its URI, and the notebook's
adder reads its checkpoint folder's name, so there two URIs are two models even over equal bytes."""

from __future__ import annotations

from pathlib import Path

from evalhub.adapters.base import CheckpointRef
from evalhub.execution.worker import _identity


def _ref(uri: Path, runtime: str, code: Path | None = None) -> CheckpointRef:
    return CheckpointRef(model="m", name=uri.name, uri=str(uri), runtime=runtime,
                         adapter="adder:Adder" if runtime == "python" else None,
                         code_uri=str(code) if code else None)  # fmt: skip


def test_equal_weights_behind_two_paths_are_one_model_for_hf(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"same weights")
    assert _identity(_ref(tmp_path / "a", "hf")) == _identity(_ref(tmp_path / "b", "hf"))
    (tmp_path / "b" / "model.safetensors").write_bytes(b"other weights")
    assert _identity(_ref(tmp_path / "a", "hf")) != _identity(_ref(tmp_path / "b", "hf"))


def test_a_python_plugins_two_checkpoints_over_empty_folders_are_two_models(tmp_path: Path) -> None:
    code = tmp_path / "repo"
    code.mkdir()
    (code / "adder.py").write_text("class Adder: ...\n")
    for name in ("careless", "careful"):
        (code / name).mkdir()
    careless, careful = _ref(code / "careless", "python", code), _ref(code / "careful", "python", code)
    assert _identity(careless) != _identity(careful)
    assert _identity(careless) == _identity(_ref(code / "careless", "python", code))  # and stable
