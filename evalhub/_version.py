"""The version of the evalhub package (one place: pyproject reads it too)."""

__version__ = "0.2.0"
