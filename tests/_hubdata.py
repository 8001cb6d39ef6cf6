"""Datasets laid out as on the Hugging Face Hub, prepared into a test's own datasets cache, read offline.

lm-eval's built-in tasks name hub datasets (``dataset_path: cais/mmlu``, ``dataset_name: abstract_algebra``).
With ``HF_DATASETS_OFFLINE=1`` ``datasets.load_dataset("cais/mmlu", "abstract_algebra")`` reads a dataset
that was *prepared* into the datasets cache before (a hub download cache alone is refused offline). This
module writes a repository folder the way the hub holds one (parquet files and a README.md whose YAML
front matter lists ``configs:``), then prepares every config with ``datasets``' local module factory and
``download_and_prepare`` under the cache folder name that the offline lookup reads (``cais___mmlu``).

>>> with hub_home(tmp_path / "hf"):
...     write_hub_dataset(tmp_path / "repos", "openai/gsm8k", {"main": {"train": rows, "test": rows}})
...     load_dataset("openai/gsm8k", "main")          # offline, from the prepared cache
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

Rows = Sequence[Mapping[str, Any]]


@contextmanager
def hub_home(path: Path) -> Iterator[Path]:
    """Point ``HF_HOME`` and the datasets cache at ``path`` (env and the already imported ``datasets``)."""
    import datasets.config

    cache = path / "datasets"
    cache.mkdir(parents=True, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in ("HF_HOME", "HF_DATASETS_CACHE")}
    saved_cfg = datasets.config.HF_DATASETS_CACHE
    os.environ["HF_HOME"] = str(path)
    os.environ["HF_DATASETS_CACHE"] = str(cache)
    datasets.config.HF_DATASETS_CACHE = cache
    try:
        yield path
    finally:
        datasets.config.HF_DATASETS_CACHE = saved_cfg
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_hub_dataset(root: Path, repo_id: str, configs: Mapping[str, Mapping[str, Rows]]) -> Path:
    """Write ``repo_id`` under ``root`` (configs -> splits -> rows) and prepare each config into the cache.

    Call inside :func:`hub_home`. Returns the repository folder.
    """
    import datasets.config
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.load import LocalDatasetModuleFactory, get_dataset_builder_class

    folder = root / repo_id
    folder.mkdir(parents=True, exist_ok=True)
    card: list[dict[str, Any]] = []
    for config, splits in configs.items():
        files = []
        for split, rows in splits.items():
            path = folder / config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist([dict(r) for r in rows]), path)
            files.append({"split": split, "path": f"{config}/{split}-*"})
        card.append({"config_name": config, "data_files": files})
    front = yaml.safe_dump({"configs": card}, sort_keys=False)
    (folder / "README.md").write_text(f"---\n{front}---\n# {repo_id}\n\nTest data in the hub's layout.\n")

    module = LocalDatasetModuleFactory(str(folder)).get_module()
    name = repo_id.split("/")[-1]
    builder_cls = get_dataset_builder_class(module, dataset_name=name)
    kwargs = {k: v for k, v in module.builder_kwargs.items() if k != "dataset_name"}
    cache = Path(datasets.config.HF_DATASETS_CACHE)
    for config in configs:
        builder = builder_cls(
            cache_dir=str(cache), dataset_name=name, config_name=config, hash=module.hash, **kwargs
        )
        # the offline lookup of "org/name" reads the folder "org___name/<config>/<version>/<hash>" and
        # its "<name>-<split>.arrow" files (datasets' CachedDatasetModuleFactory and cache builder)
        relative = Path(builder._relative_data_dir())
        output = cache / "___".join(repo_id.split("/")) / Path(*relative.parts[1:])
        builder.download_and_prepare(output_dir=str(output))
    return folder


# -- the shapes of the datasets lm-eval's mmlu and gsm8k read ----------------------------------------------


def mmlu_rows(subject: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows shaped like ``cais/mmlu`` (question, subject, choices, answer) whose answers a tiny model
    can't know: what matters is that both harnesses see the same documents."""
    import random

    rng = random.Random(f"{subject}-{seed}")
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 40), rng.randint(1, 9)
        right = a + b
        choices = [str(right), str(right + 1), str(right - 1), str(right + 10)]
        rng.shuffle(choices)
        rows.append(
            {
                "question": f"In {subject.replace('_', ' ')}, item {i}: what is {a}+{b}?",
                "subject": subject,
                "choices": choices,
                "answer": choices.index(str(right)),
            }
        )
    return rows


def gsm8k_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows shaped like ``openai/gsm8k`` (question, answer ending in ``#### <number>``)."""
    import random

    rng = random.Random(f"gsm8k-{seed}")
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 30), rng.randint(1, 9)
        rows.append(
            {
                "question": f"Tom has {a} apples and gets {b} more. How many apples has he?",
                "answer": f"He has {a}+{b}={a + b} apples.\n#### {a + b}",
            }
        )
    return rows


def write_mmlu(root: Path, subjects: Sequence[str], n: int = 2) -> Path:
    """``cais/mmlu`` with ``n`` rows per split (test, validation, dev) for each subject."""
    configs = {
        s: {split: mmlu_rows(s, n, seed=k) for k, split in enumerate(("test", "validation", "dev"))}
        for s in subjects
    }
    return write_hub_dataset(root, "cais/mmlu", configs)


def write_gsm8k(root: Path, n_train: int = 8, n_test: int = 6) -> Path:
    """``openai/gsm8k`` (config ``main``) with train and test splits."""
    return write_hub_dataset(
        root, "openai/gsm8k", {"main": {"train": gsm8k_rows(n_train, 1), "test": gsm8k_rows(n_test, 2)}}
    )


def mmlu_subjects() -> list[str]:
    """The 57 subjects of lm-eval's ``mmlu`` group, read from its own task configs (their ``dataset_name``)."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "mmlu" / "default"
    names = []
    for path in sorted(folder.glob("mmlu_*.yaml")):
        names.append(str(yaml.safe_load(path.read_text())["dataset_name"]))
    return names


# -- a user's own folder of lm-eval task YAMLs (lm-eval's --include_path) ---------------------------------

MY_TASK = """
task: my_addition
dataset_path: json
dataset_kwargs:
  data_files: {test: DATA}
test_split: test
output_type: generate_until
doc_to_text: "{{question}}"
doc_to_target: "{{answer}}"
generation_kwargs: {until: ["\\n"], max_gen_toks: 8, do_sample: false}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

MY_GROUP = """
group: my_suite
task:
  - my_addition
  - gsm8k
aggregate_metric_list:
  - metric: exact_match
    weight_by_size: true
"""


def write_task_folder(folder: Path, data: Path) -> Path:
    """A folder of one task YAML (``my_addition`` over ``data``, a JSONL file of question/answer) and a
    group ``my_suite`` over it and lm-eval's own ``gsm8k``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_addition.yaml").write_text(textwrap.dedent(MY_TASK).replace("DATA", str(data)))
    (folder / "_my_suite.yaml").write_text(textwrap.dedent(MY_GROUP))
    return folder
