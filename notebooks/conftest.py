"""nbval runs the example notebooks against a throwaway evalhub home.

The kernels nbval starts inherit this process's environment, so the home is set at import time, before
any kernel starts; the notebooks share it (the quickstart builds the tiny model, the others reuse it).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# EVALHUB_NOTEBOOK_HOME keeps the home after the run, to look at what the notebooks stored.
_KEEP = os.environ.get("EVALHUB_NOTEBOOK_HOME")
_HOME = _KEEP or tempfile.mkdtemp(prefix="evalhub-notebooks-")
os.environ["EVALHUB_HOME"] = _HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from evalhub import _embedded

    _embedded.stop(_HOME)
    if not _KEEP:
        shutil.rmtree(_HOME, ignore_errors=True)
