"""The optional parts of evalhub and the one error when a part's extra is missing.

``pip install evalhub`` is the client core (a training script's ``run.log``, the CLI, the contract
the server shares). What a notebook shows needs the ``notebook`` extra, the tracking server the
``server`` extra. A module that needs an extra imports it inside :func:`needs_extra`, so a missing
package is a :class:`~evalhub.errors.MissingExtra` that names the extra to install::

    with needs_extra("notebook", "hub.runs() as a DataFrame"):
        import polars as pl
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from evalhub.errors import MissingExtra

# extra -> the top-level modules it installs that evalhub imports (pyproject's optional-dependencies).
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "notebook": frozenset(
        {
            "polars",
            "IPython",
            "traitlets",
            "anywidget",
            "ipywidgets",
            "altair",
            "vl_convert",
            "numpy",
            "scipy",
            "pyarrow",
            "croniter",
        }
    ),
    "server": frozenset({"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "pymysql", "orjson"}),
}


def missing_extra(extra: str, feature: str, module: str) -> MissingExtra:
    """The error for ``feature`` when ``module`` (of ``extra``) is not installed."""
    return MissingExtra(
        f"{feature} needs {module}, which comes with evalhub's {extra!r} extra: "
        f"pip install 'evalhub[{extra}]'",
        extra=extra,
        module=module,
    )


@contextmanager
def needs_extra(extra: str, feature: str) -> Iterator[None]:
    """Turn a missing module of ``extra`` imported inside the block into :class:`MissingExtra`.

    Any other ImportError (a broken install, a module of no extra) passes through unchanged.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in EXTRA_MODULES[extra]:
            raise
        raise missing_extra(extra, feature, top) from None


__all__ = ["EXTRA_MODULES", "MissingExtra", "missing_extra", "needs_extra"]
