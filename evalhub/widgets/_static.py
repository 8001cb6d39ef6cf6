"""Where the widgets' front-end files live: inside the wheel, or the repo's ``widgets/`` folder."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from evalhub.errors import EvalhubError


@cache
def static_dir() -> Path:
    """The folder holding the widgets' ES modules and CSS.

    A wheel carries them as ``evalhub/_widgets_static`` (hatch ``force-include``); an editable
    install reads the repository's ``widgets/`` folder directly.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "_widgets_static", here.parent.parent / "widgets"):
        if (candidate / "evalhub.css").is_file():
            return candidate
    raise EvalhubError(
        "evalhub's widget front-end files are missing (neither evalhub/_widgets_static nor the "
        "repository's widgets/ folder exists); reinstall evalhub"
    )


def static_file(name: str) -> Path:
    """One front-end file by name, e.g. ``static_file("diff.js")``."""
    path = static_dir() / name
    if not path.is_file():
        raise EvalhubError(f"evalhub widget file {name!r} is missing from {static_dir()}; reinstall evalhub")
    return path


def esm_source(name: str) -> str:
    """A widget's ES module with the shared DOM helpers (``_dom.js``) in front: one file each, no bundler."""
    return (
        static_file("_dom.js").read_text(encoding="utf-8")
        + "\n"
        + static_file(name).read_text(encoding="utf-8")
    )
