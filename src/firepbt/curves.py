"""Public alias of :mod:`firepbt.core.curves` (``best_score_diff``, ``binom_test``)."""

from firepbt.core.curves import *  # noqa: F403
from firepbt.core.curves import __all__  # noqa: F401
