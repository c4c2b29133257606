"""Reading a TOML config file and applying ``--set key=value`` overrides."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from firepbt.config.settings import Config
from firepbt.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (["a", "b"], value parsed as a TOML value, else a plain string)."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key=value")
    key, _, raw = item.partition("=")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``key=value`` of ``overrides`` in the config table ``data`` (in place; returned)."""
    for item in overrides:
        keys, value = parse_override(item)
        table = data
        for k in keys[:-1]:
            table = table.setdefault(k, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {item}: {k} is not a table")
        table[keys[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a TOML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {p} ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {p} is not valid TOML ({exc})") from None
    data = apply_overrides(data, overrides or [])
    return Config.from_dict(data, search_path=str(p.resolve().parent))
