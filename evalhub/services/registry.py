"""The registry service: families, models, checkpoints, datasets, tasks and benchmarks — register,
read (one object, or a list as a polars DataFrame), correct (PATCH), delete (archive, purge, cascade)
and restore. It takes a :class:`~evalhub.client.Client` and nothing else.

>>> registry = Registry(client)
>>> registry.register_family("tiny-gpt", modality="llm")
>>> registry.models(family="tiny-gpt")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from evalhub._frames import kind_frame
from evalhub.client import Client
from evalhub.errors import Conflict, EvalhubError, InvalidValue

if TYPE_CHECKING:
    import polars as pl

KINDS = ("families", "models", "checkpoints", "datasets", "tasks", "benchmarks")
"""The registry's kinds, as the API names them."""


def _lm_eval_engine_config(name: str, include_path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``{"task": name}`` (and the folder, made absolute) after checking lm-eval knows the name."""
    from evalhub.lm_eval_tasks import check_task

    folder = str(Path(include_path).expanduser().resolve()) if include_path is not None else None
    check_task(name, include_path=folder)
    return {"task": name, "include_path": folder} if folder else {"task": name}


class Registry:
    """The registry of one project on one tracking server."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # -- writes ------------------------------------------------------------------------------------

    def _create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.client.post(
            f"/{kind}", {k: v for k, v in body.items() if v is not None}
        )
        return result

    def register_family(
        self,
        name: str,
        modality: str = "llm",
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a model family (``modality``: ``llm``, ``t2i``, ``vlm``, …)."""
        return self._create(
            "families", {"name": name, "modality": modality, "description": description, "metadata": metadata}
        )

    def register_model(
        self,
        name: str,
        family: str,
        runtime: str,
        code_uri: str | None = None,
        adapter: str | None = None,
        default_params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a model implementation (``runtime``: ``hf``, ``vllm``, ``openai``, ``python``).

        ``default_params`` are stored: a secret is named by the environment variable that holds it on the
        workers (``{"api_key_env": "OPENAI_API_KEY"}``), never given itself."""
        from evalhub._secrets import refusal, secret_keys

        found = secret_keys(default_params or {})
        if found:
            raise InvalidValue(refusal(found, f"register_model({name!r}) default_params"))
        return self._create(
            "models",
            {
                "name": name,
                "family": family,
                "runtime": runtime,
                "code_uri": code_uri,
                "adapter": adapter,
                "default_params": dict(default_params) if default_params else None,
                "metadata": metadata,
            },
        )

    def register_checkpoint(
        self,
        model: str,
        name: str,
        uri: str | os.PathLike[str],
        step: int | None = None,
        epoch: int | None = None,
        dataset_version: str | None = None,
        training_config: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: int | None = None,
    ) -> dict[str, Any]:
        """Register a checkpoint of ``model`` (metadata only: the weights stay at ``uri``). A local folder
        of a ``diffusers`` model that isn't a saved pipeline is refused here."""
        text = os.fspath(uri)
        folder = Path(text).expanduser()
        if "://" not in text and folder.is_dir() and self.model(model).get("runtime") == "diffusers":
            from evalhub.adapters.diffusers import check_pipeline_folder

            try:
                check_pipeline_folder(folder, f"{model}/{name}")
            except EvalhubError as exc:
                raise InvalidValue(str(exc)) from None
        return self._create(
            "checkpoints",
            {
                "model": model,
                "name": name,
                "uri": text,
                "step": step,
                "epoch": epoch,
                "dataset_version": dataset_version,
                "training_config": dict(training_config) if training_config else None,
                "metadata": metadata,
                "run_id": run_id,
            },
        )

    def register_dataset(
        self,
        name: str,
        uri: str | os.PathLike[str],
        version: str = "1",
        schema: Mapping[str, Any] | None = None,
        num_rows: int | None = None,
        content_hash: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a dataset. For a local file, row count, schema and hash are filled in."""
        text = os.fspath(uri)
        path = Path(text).expanduser()
        if (
            "://" not in text
            and path.is_file()
            and (num_rows is None or content_hash is None or schema is None)
        ):
            from evalhub._taskdata import read_rows

            table = read_rows(path)
            num_rows = table.num_rows if num_rows is None else num_rows
            content_hash = table.content_hash if content_hash is None else content_hash
            schema = table.schema if schema is None else schema
            text = str(path.resolve())
        return self._create(
            "datasets",
            {
                "name": name,
                "uri": text,
                "version": version,
                "schema": dict(schema) if schema else None,
                "num_rows": num_rows,
                "content_hash": content_hash,
                "metadata": metadata,
            },
        )

    def register_task(
        self,
        name: str,
        data: str | os.PathLike[str] | None = None,
        prompt: str | None = None,
        target: str | None = None,
        output_type: str = "generate_until",
        metrics: Sequence[str] | None = None,
        choices: str | Sequence[str] | None = None,
        type: str | None = None,
        generation: Mapping[str, Any] | None = None,
        num_fewshot: int = 0,
        lm_eval_task: str | None = None,
        dataset: str | None = None,
        include_path: str | os.PathLike[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a task: a local data file with prompt templates, or a task lm-eval knows.

        ``data`` is a JSONL or CSV file; ``prompt``/``target`` are lm-eval (Jinja) templates over its
        columns, e.g. ``"{{question}}"``; every column they name must exist in every row.
        ``output_type`` is ``generate_until`` (metric ``exact_match`` by default) or
        ``multiple_choice`` (``choices`` like ``"{{choices}}"``, metric ``acc``), or a
        loglikelihood type. ``generation`` overrides ``until``, ``max_gen_toks``, ``do_sample``.
        ``lm_eval_task="gsm8k"`` registers a task, group or tag lm-eval already knows instead of a data file
        (an unknown name is refused with the closest names); ``include_path`` adds a folder of your own
        lm-eval task YAMLs (groups included), as lm-eval's ``--include_path``: a path every worker sees.
        The data file is also registered as a dataset (``dataset``, default its file name).
        """
        from evalhub import _taskdata

        if lm_eval_task:
            if data is not None:
                raise InvalidValue(
                    "register_task: give either data= (a local file) or lm_eval_task=, not both"
                )
            return self._create(
                "tasks",
                {
                    "name": name,
                    "type": type or _taskdata.task_type(output_type),
                    "dataset": None,
                    "engine": "lm_eval",
                    "engine_config": _lm_eval_engine_config(lm_eval_task, include_path),
                    "metrics": list(metrics) if metrics else [],
                    "metadata": metadata,
                },
            )
        if data is None:
            raise InvalidValue("register_task needs data= (a JSONL/CSV file) or lm_eval_task= (e.g. 'gsm8k')")
        config = _taskdata.task_config(
            name,
            data,
            prompt=prompt,
            target=target,
            output_type=output_type,
            metrics=metrics,
            choices=choices,
            generation=generation,
            num_fewshot=num_fewshot,
        )
        table = config.pop("_table")
        dataset_name = dataset or Path(os.fspath(data)).stem
        self._ensure_dataset(dataset_name, table)
        return self._create(
            "tasks",
            {
                "name": name,
                "type": type or _taskdata.task_type(output_type),
                "dataset": dataset_name,
                "engine": "lm_eval",
                "engine_config": config,
                "metrics": [m["metric"] for m in config["metric_list"]],
                "metadata": metadata,
            },
        )

    def _ensure_dataset(self, name: str, table: Any) -> dict[str, Any]:
        try:
            return self.register_dataset(
                name,
                str(table.path),
                version=table.content_hash.split(":")[-1][:12],
                schema=table.schema,
                num_rows=table.num_rows,
                content_hash=table.content_hash,
            )
        except Conflict:
            existing = self.dataset(name)
            if existing.get("content_hash") == table.content_hash:
                return existing
            raise Conflict(
                f"a dataset named {name!r} already exists with other content ({existing.get('uri')}); "
                "pass dataset='another-name' to register_task",
                status=409,
                code="conflict",
                field="dataset",
            ) from None

    def register_image_task(
        self,
        name: str,
        prompts: str | os.PathLike[str],
        *,
        references: str | os.PathLike[str] | None = None,
        classifier: str | os.PathLike[str] | None = None,
        clip_model: str | None = None,
        metrics: Sequence[str] | None = None,
        generation: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a text-to-image task: a prompt set (JSONL/CSV, a ``prompt`` per row, optional
        ``seed``, ``reference`` image and attributes), scored with ``metrics`` among ``correct`` (needs
        ``classifier``), ``clip_score`` (``clip_model``: a local or ``hf://`` CLIP), ``fid`` and ``kid``
        (``references``, a folder, or the rows' reference images). Checked here: a missing file, an empty
        prompt or a text metric is refused with the reason."""
        from evalhub.engines import t2i

        config: dict[str, Any] = {"prompts": str(Path(prompts).expanduser().resolve())}
        for key, value in (("references", references), ("classifier", classifier)):
            if value is not None:
                config[key] = str(Path(value).expanduser().resolve())
        if clip_model is not None:
            config["clip_model"] = (
                clip_model if "://" in clip_model else str(Path(clip_model).expanduser().resolve())
            )
        if generation:
            config["generation"] = dict(generation)
        row = {"name": name, "type": "t2i", "engine": "t2i", "engine_config": config,
               "metrics": list(metrics or t2i.METRICS), "metadata": metadata}  # fmt: skip
        try:
            t2i.check_task(row)
        except EvalhubError as exc:
            raise InvalidValue(str(exc)) from None
        return self._create("tasks", row)

    def register_benchmark(
        self, name: str, tasks: Iterable[str], config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Register a named set of tasks with a run configuration (batch_size, generation, limit, …)."""
        return self._create("benchmarks", {"name": name, "tasks": list(tasks), "config": dict(config or {})})

    def register_repo(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Register the model of a code repo holding ``ai_eval_config.yaml`` (see :mod:`evalhub.plugin`)."""
        from evalhub.plugin import register_repo

        return register_repo(self, Path(path))

    def _list(self, kind: str, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for item in self.client.paged(f"/{kind}", limit=min(limit or 1000, 1000), **filters):
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items

    def _frame(self, kind: str, limit: int | None = None, **filters: Any) -> pl.DataFrame:
        return kind_frame(kind, self._list(kind, limit=limit, **filters))

    def families(self, modality: str | None = None) -> pl.DataFrame:
        """Model families, as a DataFrame."""
        return self._frame("families", modality=modality)

    def models(self, family: str | None = None, runtime: str | None = None) -> pl.DataFrame:
        """Registered models, as a DataFrame."""
        return self._frame("models", family=family, runtime=runtime)

    def checkpoints(self, model: str | None = None) -> pl.DataFrame:
        """Checkpoints (of ``model``), sorted by step, as a DataFrame."""
        return self._frame("checkpoints", model=model)

    def datasets(self, name: str | None = None) -> pl.DataFrame:
        """Registered datasets, as a DataFrame."""
        return self._frame("datasets", name=name)

    def tasks(self, type: str | None = None) -> pl.DataFrame:
        """Registered tasks, as a DataFrame."""
        return self._frame("tasks", type=type)

    def benchmarks(self) -> pl.DataFrame:
        """Registered benchmarks, as a DataFrame."""
        return self._frame("benchmarks")

    def _one(self, kind: str, ref: str | int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get(f"/{kind}/{_ref(ref)}")
        return result

    def family(self, ref: str | int) -> dict[str, Any]:
        """One family by name or id."""
        return self._one("families", ref)

    def model(self, ref: str | int) -> dict[str, Any]:
        """One model by name or id."""
        return self._one("models", ref)

    def checkpoint(self, model: str | int, name: str | None = None) -> dict[str, Any]:
        """One checkpoint: ``checkpoint(model, name)``, or ``checkpoint(id)``."""
        from evalhub.errors import NotFound

        if name is None:
            return self._one("checkpoints", model)
        page = self.client.get("/checkpoints", model=model, name=name, limit=1)
        items = page.get("items", [])
        if not items:
            self.model(model)  # a missing model says so by name
            raise NotFound(
                f"no checkpoint {name!r} of model {model!r}", status=404, code="not_found", field="name"
            )
        result: dict[str, Any] = items[0]
        return result

    def dataset(self, ref: str | int) -> dict[str, Any]:
        """One dataset by name or id."""
        return self._one("datasets", ref)

    def task(self, ref: str | int) -> dict[str, Any]:
        """One task by name or id."""
        return self._one("tasks", ref)

    def benchmark(self, ref: str | int) -> dict[str, Any]:
        """One benchmark by name or id."""
        return self._one("benchmarks", ref)

    def archived(self, kind: str) -> pl.DataFrame:
        """The archived (deleted, not purged) objects of a kind, restorable with :meth:`restore`."""
        return self._frame(_kind(kind), archived=True)

    # -- correct and remove ----------------------------------------------------------------------

    def patch(
        self,
        kind: str,
        ref: str | int,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Correct an object: a new ``description``; ``tags``/``metadata`` merged (a key set to None is removed)."""
        body = {"description": description, "tags": dict(tags) if tags is not None else None,
                "metadata": dict(metadata) if metadata is not None else None}  # fmt: skip
        result: dict[str, Any] = self.client.request("PATCH", f"/{_kind(kind)}/{_ref(ref)}", json_body=body)
        return result

    def delete(
        self, kind: str, ref: str | int, *, cascade: bool = False, purge: bool = False
    ) -> dict[str, Any]:
        """Archive an object (hidden from lists, restorable), or ``purge`` it for good. An object others
        still refer to (a checkpoint with runs) is refused with the referrers named, unless ``cascade``."""
        result: dict[str, Any] = self.client.request(
            "DELETE", f"/{_kind(kind)}/{_ref(ref)}", params={"cascade": cascade, "purge": purge}
        )
        return result

    def restore(self, kind: str, ref: str | int) -> dict[str, Any]:
        """Bring an archived object back (and what its delete archived with it)."""
        result: dict[str, Any] = self.client.post(f"/{_kind(kind)}/{_ref(ref)}/restore")
        return result


def _kind(kind: str) -> str:
    if kind in KINDS:
        return kind
    plural = {"family": "families"}.get(kind, kind + "s")
    if plural not in KINDS:
        raise InvalidValue(f"unknown registry kind {kind!r}; one of {', '.join(KINDS)}")
    return plural


def _ref(ref: str | int) -> str:
    return quote(str(ref), safe="")


__all__ = ["KINDS", "Registry"]
