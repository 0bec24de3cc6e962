"""Which engine runs a sweep's cells: the local process pool (default) or Ray.

Ray is an optional extra (``pip install 'roarm-hil[ray]'``); asking for it
without it installed is a broken set-up with the install line, not a
traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from bus.errors import HilError

EXECUTORS = ("local", "ray")
RAY_HINT = "pip install 'roarm-hil[ray]' (or: pip install 'ray>=2.9')"


class ExecutorError(HilError, RuntimeError):
    """The chosen executor cannot run here (Ray missing, no cluster at --address, no bench for hw)."""

    exit_code = 2


def load_ray(module: str) -> ModuleType:
    """Import a module of ours that needs Ray, or say how to install Ray."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise ExecutorError(f"--executor ray needs Ray, which is not installed: {RAY_HINT}") from None
