"""The version of the tracking server."""

__version__ = "0.2.0"
