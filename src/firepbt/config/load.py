"""Reading a TOML config file and applying ``--set key=value`` overrides."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from firepbt.config.settings import Config, FireSettings, PBTSettings, RandomSettings
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


# the fields of each algorithm's [algorithm] table: its settings dataclass's fields
ALGORITHM_FIELDS: dict[str, tuple[str, ...]] = {
    cls.name: tuple(f.name for f in fields(cls))
    for cls in (RandomSettings, PBTSettings, FireSettings)
}


def apply_overrides(
    data: dict[str, Any], overrides: list[str], notes: list[str] | None = None
) -> dict[str, Any]:
    """Apply ``--set key=value`` items to the TOML data.

    ``--set algorithm.name=NEW`` switches algorithms: the settings only the old algorithm
    has are dropped (and said so in ``notes``); the new one's keep their defaults unless
    set too.
    """
    for item in overrides:
        keys, value = parse_override(item)
        table = data
        for k in keys[:-1]:
            table = table.setdefault(k, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {item}: {k} is not a table")
        if keys == ["algorithm", "name"]:
            _switch_algorithm(table, value, item, notes)
        table[keys[-1]] = value
    return data


def _switch_algorithm(table: dict[str, Any], new: Any, item: str, notes: list[str] | None) -> None:
    old = table.get("name")
    if old == new or old not in ALGORITHM_FIELDS or new not in ALGORITHM_FIELDS:
        return  # nothing to switch (an unknown name is reported by the validation)
    dropped = [k for k in table if k in ALGORITHM_FIELDS[old] and k not in ALGORITHM_FIELDS[new]]
    for k in dropped:
        del table[k]
    if dropped and notes is not None:
        names = ", ".join(f"algorithm.{k}" for k in dropped)
        notes.append(f"--set {item}: dropped {names} (settings of {old} that {new} does not have)")


def load_config(
    path: str | Path, overrides: list[str] | None = None, *, notes: list[str] | None = None
) -> Config:
    """Read, override and validate a TOML config file (``notes`` receives what the
    overrides changed beyond the keys they name: settings dropped by an algorithm switch)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {p} ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {p} is not valid TOML ({exc})") from None
    data = apply_overrides(data, overrides or [], notes)
    return Config.from_dict(data, search_path=str(p.resolve().parent))
