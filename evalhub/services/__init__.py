"""The services over one :class:`~evalhub.client.Client`: each takes the client and nothing else, and
:class:`~evalhub.hub.Hub` hands them out (``hub.registry``, ``hub.runs_api``, ``hub.experiments_api``, ``hub.scoring``)."""

from __future__ import annotations

from evalhub.services.experiments import Experiments
from evalhub.services.registry import Registry
from evalhub.services.runs import Runs
from evalhub.services.scoring import Scoring

__all__ = ["Experiments", "Registry", "Runs", "Scoring"]
