"""A part whose extra is missing says which extra to install (one error, no chained traceback)."""

from __future__ import annotations

import importlib
import sys

import pytest

import evalhub
from evalhub._extras import needs_extra
from evalhub.errors import EvalhubError, MissingExtra


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable, and forget evalhub's modules that imported them already."""
    for name in list(sys.modules):
        if name.split(".")[0] in modules or name.startswith(("evalhub.widgets.", "evalhub.stats")):
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_a_missing_module_of_an_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "polars")
    with pytest.raises(MissingExtra) as info, needs_extra("notebook", "hub.runs() as a DataFrame"):
        import polars  # noqa: F401
    err = info.value
    assert str(err) == (
        "hub.runs() as a DataFrame needs polars, which comes with evalhub's 'notebook' extra: "
        "pip install 'evalhub[notebook]'"
    )
    assert (err.extra, err.module, err.name) == ("notebook", "polars", "polars")
    assert isinstance(err, EvalhubError) and isinstance(err, ImportError)  # the CLI prints one line
    assert err.__cause__ is None and err.__suppress_context__


def test_other_import_errors_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "not_an_extra_module", None)
    with pytest.raises(ModuleNotFoundError) as info, needs_extra("notebook", "x"):
        import not_an_extra_module  # noqa: F401
    assert not isinstance(info.value, MissingExtra)


def test_widgets_without_the_notebook_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "anywidget")
    with pytest.raises(MissingExtra, match=r"evalhub.compare needs anywidget.*evalhub\[notebook\]"):
        _ = evalhub.compare


def test_stats_without_the_notebook_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "numpy")
    with pytest.raises(MissingExtra, match=r"evalhub.stats needs numpy.*evalhub\[notebook\]"):
        importlib.import_module("evalhub.stats")
