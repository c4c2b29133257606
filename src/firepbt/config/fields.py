"""Typed reading of one TOML table, naming the field on every error."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from firepbt.core.errors import ConfigError, did_you_mean

MISSING = object()


class Fields:
    """Reads typed fields out of one TOML table, naming each on error."""

    def __init__(self, table: Any, prefix: str) -> None:
        if not isinstance(table, Mapping):
            raise ConfigError(f"{prefix}: expected a table, got {type(table).__name__}")
        self.table = dict(table)
        self.prefix = prefix
        self.seen: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = MISSING) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if default is MISSING:
                raise ConfigError(f"{self.name(key)}: required field is missing")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{self.name(key)}: expected {names}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{self.name(key)}: must be finite, got {value!r}")
        return value

    def positive_int(self, key: str, default: Any = MISSING, minimum: int = 1) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            raise ConfigError(f"{self.name(key)}: must be >= {minimum}, got {value}")
        return int(value)

    def choice(self, key: str, options: tuple[str, ...], default: Any = MISSING) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise ConfigError(
                f"{self.name(key)}: must be one of {', '.join(options)}; got {value!r}"
                + did_you_mean(value, options)
            )
        return str(value)

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            raise ConfigError(
                f"{self.name(unknown[0])}: unknown field" + did_you_mean(unknown[0], self.seen)
            )
