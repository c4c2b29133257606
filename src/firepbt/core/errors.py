"""Errors raised before any training starts."""


class ConfigError(ValueError):
    """An invalid experiment: the message starts with the field it names."""


class ExecutorError(RuntimeError):
    """A run cannot go on: its executor lost every worker (the last checkpoint resumes it)."""
