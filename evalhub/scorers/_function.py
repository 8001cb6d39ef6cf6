"""A Python function as a scorer: ``def score(sample) -> dict`` over each stored sample.

The function gets the sample as the server stores it (``prompt``, ``reference``, ``output``,
``filtered_output``, ``scores``, ``task``, ``extra`` with the task's document under ``extra["doc"]``) and
answers ``{metric: number}`` (a bool counts as 0/1, ``None`` is a null score); a bare number is
``{"score": number}``. Its version is a hash of its source, so a changed function is a new version.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from evalhub.errors import InvalidValue
from evalhub.scorers._base import Scorer, Values, check_name


class Function(Scorer):
    """``fn(sample) -> {metric: value}`` per sample; ``fn`` may be ``"module:function"`` (imported from
    ``code_uri`` when given).

    >>> def score(sample):
    ...     return {"has_digit": any(c.isdigit() for c in sample["output"] or "")}
    >>> exp.score(evalhub.scorers.Function(score, name="digits"))
    """

    kind: ClassVar[str] = "python"

    def __init__(
        self,
        fn: Callable[[dict[str, Any]], Any] | str,
        name: str | None = None,
        *,
        higher_is_better: Mapping[str, bool] | bool | None = None,
        code_uri: str | None = None,
    ) -> None:
        self.entrypoint = fn if isinstance(fn, str) else None
        if isinstance(fn, str):
            from evalhub.adapters.python import import_entrypoint

            try:
                fn = import_entrypoint(fn, code_uri)
            except Exception as exc:  # AdapterError: say it as a scorer problem
                raise InvalidValue(f"scorer function {self.entrypoint!r}: {exc}") from None
        if not callable(fn):
            raise InvalidValue(f"a function scorer needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.code_uri = code_uri
        self.name = check_name(name or getattr(fn, "__name__", "fn").strip("_<>") or "fn")
        self._higher = higher_is_better

    @property
    def version(self) -> str:
        try:
            source = inspect.getsource(self.fn)
        except (OSError, TypeError):
            source = f"{getattr(self.fn, '__module__', '')}.{getattr(self.fn, '__qualname__', repr(self.fn))}"
        return hashlib.sha256(source.encode()).hexdigest()[:16]

    def config(self) -> dict[str, Any]:
        where = (
            self.entrypoint
            or f"{getattr(self.fn, '__module__', '?')}:{getattr(self.fn, '__qualname__', '?')}"
        )
        return {"function": where, **({"code_uri": self.code_uri} if self.code_uri else {})}

    @property
    def higher_is_better(self) -> dict[str, bool]:
        if isinstance(self._higher, Mapping):
            return dict(self._higher)
        return {}

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Values]:
        out: list[Values] = []
        for sample in samples:
            try:
                answer = self.fn(dict(sample))
            except Exception as exc:
                raise InvalidValue(
                    f"scorer {self.name!r} failed on sample {sample.get('sample_key')!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            out.append(self._values(answer, sample))
        return out

    def _values(self, answer: Any, sample: Mapping[str, Any]) -> Values:
        if answer is None:
            return {}
        if not isinstance(answer, Mapping):
            answer = {"score": answer}
        values: Values = {}
        for metric, value in answer.items():
            if not isinstance(metric, str) or not metric or len(metric) > 190:
                raise InvalidValue(
                    f"scorer {self.name!r}: a metric name must be a short string, got {metric!r}"
                )
            if value is None:
                values[metric] = None
            elif isinstance(value, bool | int | float) and not isinstance(value, complex):
                values[metric] = float(value)
            else:
                raise InvalidValue(
                    f"scorer {self.name!r} gave {metric}={value!r} on sample {sample.get('sample_key')!r}: "
                    "a score is a number, a bool or None"
                )
        return values

    def directions(self, metrics: Sequence[str]) -> dict[str, bool]:
        if isinstance(self._higher, bool):
            return dict.fromkeys(metrics, self._higher)
        return super().directions(metrics)


__all__ = ["Function"]
