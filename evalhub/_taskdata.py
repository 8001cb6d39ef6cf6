"""Local task data: read a JSONL/CSV file, check the columns its templates name, write the lm-eval config."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhub.errors import InvalidValue

OUTPUT_TYPES = ("generate_until", "multiple_choice", "loglikelihood", "loglikelihood_rolling")
_TASK_TYPES = {
    "generate_until": "qa",
    "multiple_choice": "mcq",
    "loglikelihood": "qa",
    "loglikelihood_rolling": "lm",
}
_LOWER_IS_BETTER = {"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter"}
# lm-eval's corpus-level metrics aggregate with a function of their own (sacrebleu over all samples)
_AGGREGATIONS = {"bleu": "bleu", "chrf": "chrf", "chrf++": "chrf++", "ter": "ter"}
_GENERATION_DEFAULTS = {"until": ["\n"], "max_gen_toks": 32, "do_sample": False}

# Jinja words that are not columns.
_JINJA_WORDS = {
    "and", "or", "not", "in", "is", "if", "else", "elif", "endif", "for", "endfor", "set", "endset",
    "true", "false", "none", "True", "False", "None", "loop", "range", "lipsum", "dict", "cycler",
    "joiner", "namespace", "with", "endwith", "recursive", "macro", "endmacro",
}  # fmt: skip
_EXPR = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NAME = re.compile(r"(?<![\w.|])\s*([A-Za-z_]\w*)")
_BOUND = re.compile(r"\b(?:for\s+([\w\s,]+?)\s+in|set\s+(\w+))\b")


@dataclass
class Table:
    """A local data file read for a task."""

    path: Path
    fmt: str  # "json" or "csv": the lm-eval/HF datasets loader
    rows: list[dict[str, Any]] = field(repr=False)
    content_hash: str

    @property
    def num_rows(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> list[str]:
        names: list[str] = []
        for row in self.rows:
            for key in row:
                if key not in names:
                    names.append(key)
        return names

    @property
    def schema(self) -> dict[str, Any]:
        types: dict[str, str] = {}
        for name in self.columns:
            kinds = {type(row[name]).__name__ for row in self.rows if row.get(name) is not None}
            types[name] = kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "null")
        return {"columns": types, "format": self.fmt}


def read_rows(path: str | os.PathLike[str]) -> Table:
    """Read a ``.jsonl``/``.json`` (JSON lines or a list of objects) or ``.csv`` file."""
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise InvalidValue(f"data file {p} does not exist (give a JSONL or CSV file)")
    raw = p.read_bytes()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    text = raw.decode("utf-8-sig")
    suffix = p.suffix.lower()
    rows: list[dict[str, Any]] = []
    if suffix == ".csv":
        rows = [dict(r) for r in csv.DictReader(text.splitlines())]
        return Table(p, "csv", rows, digest)
    if suffix not in (".jsonl", ".json", ".ndjson"):
        raise InvalidValue(f"data file {p.name}: unsupported format {suffix!r} (use .jsonl, .json or .csv)")
    stripped = text.lstrip()
    if suffix == ".json" and stripped.startswith("["):
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InvalidValue(f"data file {p.name}: not valid JSON ({exc})") from None
        rows = list(loaded)
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise InvalidValue(f"data file {p.name} line {number}: not valid JSON ({exc})") from None
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise InvalidValue(
                f"data file {p.name} row {number}: expected a JSON object, got {type(row).__name__}"
            )
    return Table(p, "json", rows, digest)


def template_names(template: str) -> set[str]:
    """The variables a Jinja template reads from a document (``{{question}}`` -> ``{"question"}``)."""
    names: set[str] = set()
    bound: set[str] = set()
    for expr, stmt in _EXPR.findall(template):
        body = re.sub(r"\s*([|.])\s*", r"\1", _STRING.sub("''", expr or stmt))
        for loop_vars, set_var in _BOUND.findall(body):
            bound.update(v.strip() for v in loop_vars.split(",") if v.strip())
            if set_var:
                bound.add(set_var)
        if stmt:  # in "for x in choices", only what follows "in" is read
            head = re.match(r"\s*for\s+[\w\s,]+?\s+in\s+(.*)", body, re.S)
            if head:
                body = head.group(1)
            elif re.match(r"\s*set\s+\w+\s*=", body):
                body = body.split("=", 1)[1]
            elif not re.match(r"\s*(if|elif)\b", body):
                continue
        for name in _NAME.findall(body):
            if name not in _JINJA_WORDS:
                names.add(name)
    return names - bound


def _check_columns(table: Table, templates: Mapping[str, str | None]) -> None:
    columns = set(table.columns)
    for what, template in templates.items():
        if not isinstance(template, str):
            continue
        for name in sorted(template_names(template)):
            if name not in columns:
                raise InvalidValue(
                    f"{what} template {template!r} names column {name!r}, but {table.path.name} has only "
                    f"{', '.join(sorted(columns)) or 'no columns'}"
                )
            for number, row in enumerate(table.rows, 1):
                if name not in row:
                    raise InvalidValue(
                        f"{table.path.name} row {number} has no column {name!r} ({what} template needs it)"
                    )


def task_type(output_type: str) -> str:
    """The registry ``type`` of a task of this lm-eval output type."""
    return _TASK_TYPES.get(output_type, "gen")


def task_config(
    name: str,
    data: str | os.PathLike[str],
    *,
    prompt: str | None,
    target: str | None,
    output_type: str = "generate_until",
    metrics: Sequence[str] | None = None,
    choices: str | Sequence[str] | None = None,
    generation: Mapping[str, Any] | None = None,
    num_fewshot: int = 0,
) -> dict[str, Any]:
    """The lm-eval ``engine_config`` of a local task (docs/rest-api.md), plus ``_table`` (the data)."""
    if output_type not in OUTPUT_TYPES:
        raise InvalidValue(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
    if not prompt:
        raise InvalidValue(
            "register_task needs prompt= (a template over the data's columns, e.g. '{{question}}')"
        )
    if target is None and output_type != "loglikelihood_rolling":
        raise InvalidValue("register_task needs target= (e.g. '{{answer}}')")
    if output_type == "multiple_choice" and not choices:
        raise InvalidValue("a multiple_choice task needs choices= (e.g. '{{choices}}' or a list of strings)")
    if isinstance(metrics, str):
        metrics = [metrics]
    metric_names = (
        list(metrics) if metrics else (["acc"] if output_type == "multiple_choice" else ["exact_match"])
    )
    table = read_rows(data)
    if not table.rows:
        raise InvalidValue(f"data file {table.path.name} has no rows")
    doc_to_choice: str | list[str] | None = None
    if choices is not None:
        doc_to_choice = choices if isinstance(choices, str) else [str(c) for c in choices]
    _check_columns(
        table,
        {
            "prompt": prompt,
            "target": target,
            "choices": doc_to_choice if isinstance(doc_to_choice, str) else None,
        },
    )
    generation_kwargs = None
    if output_type == "generate_until":
        generation_kwargs = {**_GENERATION_DEFAULTS, **dict(generation or {})}
    elif generation:
        raise InvalidValue(f"generation= only applies to generate_until tasks, not {output_type}")
    return {
        "task": name,
        "dataset_path": table.fmt,
        "dataset_kwargs": {"data_files": {"test": str(table.path)}},
        "test_split": "test",
        "output_type": output_type,
        "doc_to_text": prompt,
        "doc_to_target": target,
        "doc_to_choice": doc_to_choice,
        "generation_kwargs": generation_kwargs,
        "metric_list": [
            {
                "metric": m,
                "aggregation": _AGGREGATIONS.get(m, "mean"),
                "higher_is_better": m not in _LOWER_IS_BETTER,
            }
            for m in metric_names
        ],
        "num_fewshot": int(num_fewshot),
        "metadata": {"version": 1},
        "_table": table,
    }


__all__ = ["Table", "read_rows", "task_config", "task_type", "template_names"]
