"""The base of evalhub's anywidget widgets: shared CSS and text/plain + text/html fallbacks."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import anywidget

from evalhub.widgets._static import static_file


class Fallbacks:
    """A widget whose output also reads well where no widget can render: besides the widget view,
    ``_repr_mimebundle_`` carries a text/plain summary (terminal IPython, nbval) and a static
    text/html rendering (nbconvert, GitHub). Put it before the widget class among the bases."""

    def _text(self) -> str:
        """A plain-text rendering of the widget's current state."""
        return f"<{type(self).__name__}>"

    def _html(self) -> str:
        """A static HTML rendering of the widget's current state."""
        return f"<pre>{html.escape(self._text())}</pre>"

    def __repr__(self) -> str:
        return self._text()

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        data["text/plain"] = self._text()
        data["text/html"] = self._html()
        return data, metadata


class EvalhubWidget(Fallbacks, anywidget.AnyWidget):
    """An anywidget with evalhub's shared CSS and the :class:`Fallbacks`."""

    _css = static_file("evalhub.css")


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A fixed-width text table."""
    cells = [[str(h) for h in header]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """A static HTML table (values escaped)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="evh-static">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def fmt_number(value: Any, digits: int = 4) -> str:
    """A metric value for display: 4 significant digits, integers as integers."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e12:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)
