"""The experiment spec: the YAML a user writes, parsed into typed objects.

>>> spec = parse_spec('''
... name: tiny-progress
... models:
...   - model: tiny-gpt
...     checkpoints: [step-100, step-200]
... tasks: [arith-add]
... config: {limit: 50, seed: 1}
... scorers: [{type: exact_match, ignore_case: true, strip: true}]
... ''')
>>> spec.models[0].checkpoints
['step-100', 'step-200']

A malformed spec raises :class:`evalhub.errors.SpecError` naming the line and the field at fault, for
broken YAML as well as for a wrong type or an unknown key. Names (models, checkpoints, tasks) are only
checked against the registry by the orchestrator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from evalhub.errors import SpecError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerationConfig(_Strict):
    """Sampling overrides applied to every generative task (the tasks' own settings otherwise)."""

    max_new_tokens: int | None = Field(default=None, ge=1)
    until: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)

    @field_validator("until", mode="before")
    @classmethod
    def _one_stop(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def as_gen_kwargs(self) -> dict[str, Any]:
        """The overrides in lm-eval's ``generation_kwargs`` vocabulary (only the fields that are set)."""
        out: dict[str, Any] = {}
        if self.max_new_tokens is not None:
            out["max_gen_toks"] = self.max_new_tokens
        if self.until is not None:
            out["until"] = list(self.until)
        if self.temperature is not None:
            out["temperature"] = self.temperature
            out["do_sample"] = self.temperature > 0
        if self.top_p is not None:
            out["top_p"] = self.top_p
        return out


class Resources(_Strict):
    """What each worker asks of the cluster, and how many run at once."""

    gpus_per_worker: float = Field(default=1, ge=0)
    cpus_per_worker: float = Field(default=1, ge=0)
    max_workers: int | None = Field(default=None, ge=1)


class RunConfig(_Strict):
    """The global configuration of an experiment; a benchmark's config fills what is left unset."""

    limit: int | float | None = Field(default=None, gt=0)
    seed: int = 1234
    batch_size: int = Field(default=16, ge=1)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    resources: Resources = Field(default_factory=Resources)
    max_attempts: int = Field(default=3, ge=1)
    num_fewshot: int | None = Field(default=None, ge=0)
    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False
    system_instruction: str | None = None
    # a folder of the user's own lm-eval task YAMLs (lm-eval's --include_path); a path every worker sees
    include_path: str | None = None
    # a Ray runtime_env for every worker (pip, env_vars, working_dir, py_modules, ...): checked by Ray
    # when the experiment is submitted; one that Ray cannot build on a node fails its runs naming why
    runtime_env: dict[str, Any] | None = None
    # metric plugins built on each worker for each run: entry-point names of the evalhub.metrics group,
    # module:Class paths, or {plugin: name, **kwargs} (evalhub.metric_plugins)
    metric_plugins: list[str | dict[str, Any]] = Field(default_factory=list)


class ModelEntry(_Strict):
    """One registered model, which of its checkpoints to evaluate, and with which runtimes."""

    model: str = Field(min_length=1)
    checkpoints: list[str] | Literal["all"] = "all"
    runtimes: list[str] | None = None
    # adapter params over the model's default_params, e.g. {base_url: ...} for the openai runtime
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        from evalhub._secrets import refusal, secret_keys

        found = secret_keys(value)
        if found:
            raise ValueError(refusal(found, "params"))
        return value

    @field_validator("checkpoints", "runtimes", mode="before")
    @classmethod
    def _one_name(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "all":
            return [value]
        return value

    @field_validator("checkpoints", "runtimes")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("must name at least one entry (or leave it out)")
        return value


def _scorer_entry(value: dict[str, Any]) -> dict[str, Any]:
    """A ``scorers:`` entry must build a scorer (a known type with valid options)."""
    from evalhub.errors import InvalidValue
    from evalhub.scorers import from_spec

    try:
        from_spec(value)
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None
    return value


ScorerEntry = Annotated[dict[str, Any], AfterValidator(_scorer_entry)]
"""A scorer applied to every finished run's stored samples: ``{type: exact_match | regex | lm_eval |
python | judge, ...options}`` (see :func:`evalhub.scorers.from_spec`)."""


class ExperimentSpec(_Strict):
    """An experiment: models x checkpoints x runtimes x tasks, under one config; ``scorers`` score the
    finished runs' samples again (each recorded as a scoring of every run)."""

    name: str = Field(min_length=1)
    models: list[ModelEntry] = Field(min_length=1)
    tasks: list[str] = Field(default_factory=list)
    benchmark: str | None = None
    config: RunConfig = Field(default_factory=RunConfig)
    scorers: list[ScorerEntry] = Field(default_factory=list)

    @field_validator("tasks", mode="before")
    @classmethod
    def _one_task(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _has_tasks(self) -> ExperimentSpec:
        if not self.tasks and not self.benchmark:
            raise ValueError("an experiment needs 'tasks' or a 'benchmark'")
        return self


def parse_spec(
    source: str | dict[str, Any] | os.PathLike[str] | ExperimentSpec,
) -> tuple[ExperimentSpec, str]:
    """Parse YAML text, a path to a YAML file, a dict, or a spec; return the spec and its YAML text.

    Raises :class:`SpecError` with the line and field of the first problem.
    """
    import yaml

    if isinstance(source, ExperimentSpec):
        return source, yaml.safe_dump(source.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    if isinstance(source, dict):
        text = yaml.safe_dump(source, sort_keys=False)
    elif isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"no spec file at {path}")
        text = path.read_text(encoding="utf-8")
    else:
        text = str(source)
    return load_spec(text), text


def load_spec(text: str) -> ExperimentSpec:
    """Parse the YAML text of an experiment spec (see :func:`parse_spec`)."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise SpecError(f"malformed YAML: {problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        got = "nothing" if data is None else type(data).__name__
        raise SpecError(f"a spec is a mapping with 'name', 'models' and 'tasks', got {got}", line=1)
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [part for part in error["loc"] if not _is_union_tag(part)]
        field = _dotted(loc)
        line = _line_of(root, loc)
        raise SpecError(_message(error), line=line, field=field or None) from None


def _is_union_tag(part: Any) -> bool:
    # pydantic puts union member names ("list[str]", "literal['all']") into error locations
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check its spelling and indentation)"
    if kind == "missing":
        return "required field is missing"
    msg = str(error.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def line_of(text: str, loc: list[Any]) -> int | None:
    """The line (1-based) of the node at ``loc`` (e.g. ``["models", 0, "model"]``) in a spec's YAML text."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    return _line_of(root, loc) if root is not None else None


def _line_of(root: Any, loc: list[Any]) -> int | None:
    """Walk the composed YAML node tree along a pydantic location; the deepest node's line (1-based)."""
    import yaml

    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for depth, part in enumerate(loc):
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    if depth == len(loc) - 1:
                        return int(key.start_mark.line) + 1  # point at the key itself
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


__all__ = [
    "ExperimentSpec",
    "GenerationConfig",
    "ModelEntry",
    "Resources",
    "RunConfig",
    "line_of",
    "load_spec",
    "parse_spec",
]
