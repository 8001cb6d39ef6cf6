"""A chat template asked of a checkpoint whose tokenizer has none: refused when the experiment is planned,
before any run exists (the checkpoint's folder is read, nothing is loaded)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from _tinymodel import tiny_path

from evalhub.adapters.hf import has_chat_template
from evalhub.errors import SpecError


def _without_template(folder: Path) -> Path:
    folder.mkdir()
    for item in tiny_path().iterdir():
        if item.name != "chat_template.jinja":
            (folder / item.name).write_bytes(item.read_bytes())
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_a_checkpoint_folder_says_whether_its_tokenizer_has_a_chat_template(tmp_path: Path) -> None:
    assert has_chat_template(str(tiny_path())) is True
    assert has_chat_template(f"file://{tiny_path()}") is True
    assert has_chat_template(str(_without_template(tmp_path / "plain"))) is False
    assert has_chat_template(str(tmp_path / "elsewhere")) is None  # not here: a worker decides
    assert has_chat_template("hf://org/model@main") is None


def test_plan_refuses_a_chat_template_the_tokenizer_lacks(hub: Any, tmp_path: Path) -> None:
    from evalhub import tiny
    from evalhub.orchestrator import plan

    tiny.write_tasks(tmp_path, n=4)
    hub.register_family("tiny-gpt", modality="llm")
    hub.register_model("tiny-gpt", family="tiny-gpt", runtime="hf")
    hub.register_checkpoint("tiny-gpt", "chat", uri=str(tiny_path()), step=1)
    hub.register_checkpoint("tiny-gpt", "plain", uri=str(_without_template(tmp_path / "plain")), step=2)
    tiny.register_tasks(hub, tmp_path)
    spec = (
        f"name: chat-{uuid.uuid4().hex[:6]}\nmodels: [{{model: tiny-gpt, checkpoints: [chat, plain]}}]\n"
        "tasks: [arith-add]\nconfig:\n  limit: 2\n  apply_chat_template: true\n"
    )
    with pytest.raises(SpecError, match=r"tiny-gpt/plain .* has no chat template") as err:
        plan(hub, spec)
    assert err.value.field == "config.apply_chat_template" and err.value.line == 6
    assert len(plan(hub, spec.replace("[chat, plain]", "[chat]")).runs) == 1
    assert hub.experiments().height == 0
