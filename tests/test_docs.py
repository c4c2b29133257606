"""The documentation site (issue 10): `mkdocs build --strict` passes, and fails when it must.

The strict build turns every warning into an error: a broken link or anchor, a public
object of the API reference without a docstring (docs/templates/python/material), a
docstring naming an object that does not exist (docs/griffe_docstrings.py). The first
test builds the real site; the second builds a tiny site with the same machinery and
checks that each kind of defect fails it, so the first test cannot pass by accident.
The builds are skipped only where mkdocs is not installed (it is in the `test` and `docs`
extras). A third test checks that every key the config accepts is in the configuration
reference (it needs no mkdocs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mkdocs")  # the docs extra (also in the test extra)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=config.parent)


def test_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    r = build(ROOT / "mkdocs.yml", site)
    assert r.returncode == 0, r.stdout + r.stderr
    api = (site / "api" / "curves" / "index.html").read_text(encoding="utf-8")
    assert 'id="firepbt.core.curves.best_score_diff"' in api  # rendered from the docstrings
    results = site / "benchmarks" / "RESULTS" / "index.html"  # served from benchmarks/
    assert "FIRE PBT vs PBT vs random search" in results.read_text(encoding="utf-8")
    assert not (site / "hooks.py").exists() and not (site / "griffe_docstrings.py").exists()


def settings_keys(klass: type, seen: set[type]) -> set[str]:
    """Field names of a settings dataclass and of every dataclass its fields hold."""
    if klass in seen:
        return set()
    seen.add(klass)
    keys = set()
    for name, hint in typing.get_type_hints(klass).items():
        if name in {f.name for f in fields(klass)}:
            keys.add(name)
            for inner in [hint, *typing.get_args(hint)]:
                for t in [inner, *typing.get_args(inner)]:
                    if is_dataclass(t) and isinstance(t, type):
                        keys |= settings_keys(t, seen)
    return keys


def test_configuration_reference_names_every_key() -> None:
    """Every key of the config's settings (found from Config's fields) is in the reference."""
    from firepbt.config.settings import Config
    from firepbt.core.space import Choice, Int, LogUniform, Uniform

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`\[?([a-z_][a-z0-9_.]*?)(?:\.NAME)?\]?`", text))
    documented |= {name.rsplit(".", 1)[-1] for name in documented}
    keys = settings_keys(Config, set()) - {"search_path"}  # set from the file's location
    for klass in (LogUniform, Uniform, Int, Choice):  # [space.NAME] tables
        keys |= {f.name for f in fields(klass)} | {"kind"}
    assert {"p_stat", "decays", "cpus"} <= keys  # the walk reaches the nested settings
    missing = sorted(keys - documented)
    assert not missing, f"config keys missing from docs/configuration.md: {', '.join(missing)}"


# -- the strict build fails on each kind of defect --------------------------------------

GOOD = '''"""A tiny package."""


def documented() -> int:
    """Has a docstring; see :func:`other`."""
    return 1


def other() -> int:
    """Also documented."""
    return 2
'''
DEFECTS = {
    "none": (GOOD, "[ok](index.md)", None),
    "missing docstring": (
        GOOD + "\n\ndef undocumented() -> int:\n    return 3\n",
        "",
        "missing docstring: tinypkg.undocumented",
    ),
    "broken link": (GOOD, "[gone](missing.md)", "missing.md"),
    "broken anchor": (GOOD, "[gone](index.md#nowhere)", "#nowhere"),
    "docstring names nothing": (
        GOOD.replace(":func:`other`", ":func:`renamed`"),
        "",
        "cross-reference target 'renamed'",
    ),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_strict_build_fails_on_defects(tmp_path: Path, defect: str) -> None:
    source, link, expected = DEFECTS[defect]
    (tmp_path / "src" / "tinypkg").mkdir(parents=True)
    (tmp_path / "src" / "tinypkg" / "__init__.py").write_text(source)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(f"# Tiny\n\n{link}\n\n::: tinypkg\n")
    # the real configuration, pointed at the tiny package and page
    yaml = pytest.importorskip("yaml")  # a dependency of mkdocs
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config.pop("hooks", None)
    config.pop("watch", None)
    config.pop("exclude_docs", None)
    config["nav"] = ["index.md"]
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            ms = plugin["mkdocstrings"]
            ms["custom_templates"] = str(ROOT / "docs" / "templates")
            python = ms["handlers"]["python"]
            python["paths"] = [str(tmp_path / "src")]
            python["options"]["extensions"] = [str(ROOT / "docs" / "griffe_docstrings.py")]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    r = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    out = r.stdout + r.stderr
    if expected is None:
        assert r.returncode == 0, out
    else:
        assert r.returncode != 0, out
        assert expected in out, out
