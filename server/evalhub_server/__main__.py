from __future__ import annotations

import sys

from .runner import main

# Guarded: worker processes (spawned, ``--workers N``) import this module again as ``__mp_main__``.
if __name__ == "__main__":
    sys.exit(main())
