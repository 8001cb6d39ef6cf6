"""nbval runs the example notebooks against a throwaway evalhub home.

The kernels nbval starts inherit this process's environment, so the home is set at import time, before
any kernel starts; the notebooks share it (the quickstart builds the tiny model, the others reuse it).
Their experiments run as a user's do, on the default executor: evalhub's local Ray cluster under that
home, told to stop a minute after its last use (not the default 15) and stopped at the end anyway, so it
does not outlive the notebooks and load the rest of the suite.
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
os.environ["EVALHUB_RAY_CLUSTER_IDLE_S"] = "60"
os.environ.pop("EVALHUB_EXECUTOR", None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from evalhub import _embedded
    from evalhub.execution import cluster

    cluster.stop(_HOME)
    _embedded.stop(_HOME)
    if not _KEEP:
        shutil.rmtree(_HOME, ignore_errors=True)
