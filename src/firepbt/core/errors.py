"""Errors raised before any training starts."""


class ConfigError(ValueError):
    """An invalid experiment: the message starts with the field it names."""
