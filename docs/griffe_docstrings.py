"""Griffe extension: firepbt's docstrings as the API reference shows them.

1. Sphinx roles become cross-references. The docstrings cite objects the Sphinx way
   (``:class:`~firepbt.runner.loop.Run```, ``:meth:`write```, ``:mod:`firepbt.report```).
   Each name is resolved where the docstring stands (its class, then its module, then as
   a full path, then as the one object of the package whose path ends with it). A name that resolves to an object of the package becomes an optional
   autorefs link: a link where the reference shows that object, plain code where it
   does not. A name that resolves to nothing stays a plain cross-reference, which the
   strict build reports: a docstring naming a function that was renamed fails it.
   A paragraph ending in ``::`` (a literal block follows) ends in ``:`` instead.
2. An override without a docstring takes its base class's (as Sphinx autodoc does).
3. Attributes without a docstring (instance state, dataclass fields described in their
   class's docstring) and special methods other than ``__init__`` are not shown
   (``filters: public`` in ``mkdocs.yml``). Every other public object is shown, and one
   without a docstring fails the strict build (``docs/templates/python/material``).

Nothing in ``src/`` changes; this only affects the rendered site.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`(~?)([\w.]+)`")
LITERAL = re.compile(r"::$", re.MULTILINE)


class MarkdownDocstrings(griffe.Extension):
    """Rewrites roles, inherits docstrings and hides undocumented attributes (see above)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Runs once the whole package is loaded, so that every name can be resolved."""
        objects = [pkg, *_walk(pkg)]
        for obj in objects:
            if obj.is_attribute and not obj.docstring:
                obj.public = False
            elif obj.name.startswith("__") and obj.name.endswith("__") and obj.name != "__init__":
                obj.public = False
        for cls in (o for o in objects if o.is_class):
            for name, member in cls.members.items():
                if member.is_alias or member.docstring is not None:
                    continue
                for base in _bases(cls):
                    inherited = base.members.get(name)
                    if inherited is not None and not inherited.is_alias and inherited.docstring:
                        member.docstring = griffe.Docstring(
                            inherited.docstring.value, parent=member
                        )
                        break
        paths = [o.path for o in objects]
        for obj in objects:
            if obj.docstring is not None:
                text = ROLE.sub(lambda m, o=obj: _ref(pkg, paths, o, m), obj.docstring.value)
                obj.docstring.value = LITERAL.sub(":", text)


def _ref(pkg: griffe.Module, paths: list[str], obj: griffe.Object, match: re.Match[str]) -> str:
    short, name = match.group(1) == "~", match.group(2)
    label = name.rsplit(".", 1)[-1] if short else name
    path = _resolve(pkg, obj, name)
    if path is None:  # a name not imported where it is cited: the one object so named
        found = [p for p in paths if p.endswith(f".{name}")]
        path = found[0] if len(found) == 1 else None
    if path is None:  # names nothing: a required reference, so the strict build fails
        return f"[`{label}`][{name}]"
    return f'<autoref identifier="{path}" optional><code>{label}</code></autoref>'


def _resolve(pkg: griffe.Module, obj: griffe.Object, name: str) -> str | None:
    head, _, rest = name.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        if (scope.is_class or scope.is_module) and head in scope.members:
            member = scope.members[head]
            base = member.target_path if member.is_alias else member.path
            return _exists(pkg, f"{base}.{rest}" if rest else base)
        scope = scope.parent
    return _exists(pkg, name)


def _exists(pkg: griffe.Module, path: str) -> str | None:
    root, _, rest = path.partition(".")
    if root != pkg.name:
        return None
    try:
        found = pkg[rest] if rest else pkg
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return found.path if found is not None else None


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = []
    for member in obj.members.values():
        if member.is_alias:
            continue
        found.append(member)
        if member.is_module or member.is_class:
            found.extend(_walk(member))
    return found


def _bases(cls: griffe.Class) -> list[griffe.Class]:
    try:
        return list(cls.mro())
    except Exception:  # a base outside the loaded packages (ABC, Protocol, ...)
        return []
