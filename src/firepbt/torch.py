"""Public alias of :mod:`firepbt.integrations.torch`: ``from firepbt.torch import TorchTrainable``."""

from firepbt.integrations.torch import *  # noqa: F403
from firepbt.integrations.torch import __all__  # noqa: F401
