"""A trainable module that imports in the controller only (not in a worker process).

The test sets TOYS_CONTROLLER_PID to its own process id first.
"""

import os

from toys import Climb

if str(os.getpid()) != os.environ.get("TOYS_CONTROLLER_PID"):
    raise ImportError("this module only imports in the controller")

__all__ = ["Climb"]
