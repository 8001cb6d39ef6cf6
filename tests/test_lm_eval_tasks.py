"""lm-eval's task index as evalhub uses it: names checked at registration (closest names offered), a
user's folder of task YAMLs (groups included), the on-disk cache, and the folders a task needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _hubdata import write_task_folder

from evalhub import lm_eval_tasks
from evalhub.errors import InvalidValue


def test_names_of_tasks_groups_and_tags_have_their_kind() -> None:
    assert lm_eval_tasks.check_task("mmlu") == "group"
    assert lm_eval_tasks.check_task("mmlu_stem_tasks") == "tag"
    assert lm_eval_tasks.check_task("gsm8k") == "task"


def test_an_unknown_name_is_refused_with_the_closest_names() -> None:
    with pytest.raises(InvalidValue, match=r"'mmlu_abstract_algebr'.*did you mean 'mmlu_abstract_algebra'"):
        lm_eval_tasks.check_task("mmlu_abstract_algebr")


def test_the_index_is_cached_on_disk_and_read_without_importing_lm_eval() -> None:
    lm_eval_tasks.default_entries()
    cached = list(lm_eval_tasks.cache_dir().glob("lm_eval_tasks-*.json"))
    assert cached and "gsm8k" in json.loads(cached[0].read_text())["entries"]
    code = (
        "import sys; from evalhub import lm_eval_tasks as t; "
        "assert t.check_task('mmlu') == 'group'; assert 'lm_eval' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_group_needs_only_its_own_folder() -> None:
    folders = lm_eval_tasks.folders_for(["mmlu"])
    assert folders is not None and len(folders) == 1 and folders[0].endswith("mmlu/default")
    assert lm_eval_tasks.folders_for(["no_such_task_at_all"]) is None


def test_a_users_folder_adds_its_tasks_and_groups(tmp_path: Path) -> None:
    folder = write_task_folder(tmp_path / "my_tasks", tmp_path / "data.jsonl")
    assert lm_eval_tasks.check_task("my_suite", include_path=folder) == "group"
    assert lm_eval_tasks.check_task("my_addition", include_path=folder) == "task"
    with pytest.raises(InvalidValue, match=r"did you mean 'my_addition'"):
        lm_eval_tasks.check_task("my_adition", include_path=folder)
    with pytest.raises(InvalidValue, match="is not a folder"):
        lm_eval_tasks.check_task("my_suite", include_path=tmp_path / "nowhere")


def test_register_task_checks_the_name_and_keeps_the_folder(
    hub: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    folder = write_task_folder(tmp_path / "my_tasks", tmp_path / "data.jsonl")
    monkeypatch.chdir(tmp_path)
    row = hub.register_task("suite", lm_eval_task="my_suite", include_path="my_tasks")
    assert row["engine_config"] == {"task": "my_suite", "include_path": str(folder.resolve())}
    assert hub.register_task("mmlu", lm_eval_task="mmlu")["engine_config"] == {"task": "mmlu"}
    with pytest.raises(InvalidValue, match=r"did you mean 'gsm8k'"):
        hub.register_task("gsm", lm_eval_task="gsm8kk")
    assert "gsm" not in hub.tasks()["name"].to_list()
